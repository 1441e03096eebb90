"""End to end: the real `openai` client → router → the real vLLM (CPU) serving a tiny model built at
test time with two LoRA adapters, and → Bedrock (local wire server) on fallback.

One vLLM server per test session (~30-40 s start; the ``vllm_url`` fixture in conftest.py, shared
with test_cascade_e2e.py). Its Python comes from TIERWISE_VLLM_PYTHON (default
<repo>/.venv-vllm/bin/python, made by `make vllm-env`); if it is missing these tests fail when
CI=true and skip otherwise.
"""

from __future__ import annotations

import httpx
import openai
import pytest
from conftest import KEY_A, make_config

from tierwise_router.ledger import read_ledger

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _oc(app) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=KEY_A, base_url="http://router.test/v1", max_retries=0,
                              http_client=httpx.AsyncClient(transport=httpx.ASGITransport(app=app), timeout=60))


async def test_auto_and_adapter_routing_on_real_vllm(vllm_url, settings, client_for):
    ctx = client_for(settings, make_config([vllm_url]))
    async with ctx:
        oc = _oc(ctx.app)
        raw = await oc.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "What is 12 plus 30? Answer with a number."}],
            max_tokens=8, temperature=0)
        r = raw.parse()
        assert raw.headers["x-tierwise-route"] == "tier1:tiny:billing"  # no tier 2 here; math → billing
        assert r.model == "billing"  # vLLM served the LoRA adapter
        assert r.usage.completion_tokens >= 1 and r.usage.prompt_tokens > 5
        assert float(raw.headers["x-tierwise-cost-usd"]) > 0
        r2 = await oc.chat.completions.create(model="tiny:support", messages=[{"role": "user", "content": "hi"}],
                                              max_tokens=4, temperature=0)
        assert r2.model == "support"
        r3 = await oc.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}],
                                              max_tokens=4, temperature=0)
        assert r3.model == "tiny"
        models = [m.id async for m in oc.models.list()]
        assert models[:4] == ["auto", "tiny", "tiny:billing", "tiny:support"]
        st = ctx.app.state.router
        assert st.replicas[0].scrape_ok  # scraped vllm:num_requests_waiting from the real /metrics
    entries, bad = read_ledger(settings.ledger_path)
    assert bad == 0 and [e["adapter"] for e in entries] == ["billing", "support", None]
    assert entries[0]["prompt_tokens"] == r.usage.prompt_tokens


async def test_streaming_with_usage_on_real_vllm(vllm_url, settings, client_for):
    ctx = client_for(settings, make_config([vllm_url]))
    async with ctx:
        stream = await _oc(ctx.app).chat.completions.create(
            model="tiny:billing", messages=[{"role": "user", "content": "Tell me about invoices."}],
            max_tokens=12, temperature=0, stream=True, stream_options={"include_usage": True})
        chunks = [c async for c in stream]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        usage = chunks[-1].usage
        assert usage is not None and usage.completion_tokens == 12 and text
    entries, _ = read_ledger(settings.ledger_path)
    assert entries[-1]["completion_tokens"] == 12 and entries[-1]["status"] == "ok"


async def test_timeout_on_real_vllm_falls_back_to_bedrock(vllm_url, settings, fake_bedrock, client_for):
    fb, burl = fake_bedrock
    cfg = make_config([vllm_url], burl)
    cfg = cfg.model_copy(update={"models": [cfg.models[0].model_copy(update={"timeout_s": 0.001}), cfg.models[1]]})
    ctx = client_for(settings, cfg)
    async with ctx:
        raw = await _oc(ctx.app).chat.completions.with_raw_response.create(
            model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=4)
        assert raw.headers["x-tierwise-fallback"] == "tier1_timeout"
        assert raw.parse().choices[0].message.content == "Bonjour from Bedrock"
        assert len(fb.requests) == 1
