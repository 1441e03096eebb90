"""Cascade end to end: the real `openai` client → router → the real tiny vLLM (CPU) with logprobs,
escalating to Bedrock (local wire server) when the tiny model's confidence is low.

The threshold is set from a direct call to the same vLLM (same greedy request): just above the
confidence vLLM reports → the router must escalate; just below → it must keep Tier 1's answer. So
the verdict is made from the real logprobs, not from a constant either way.
"""

from __future__ import annotations

import math

import httpx
import openai
import pytest
from conftest import KEY_A, make_config

from tierwise_router.config import hash_api_key
from tierwise_router.ledger import read_ledger

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
N = 4
MSG = [{"role": "user", "content": "Write one sentence about the sea."}]


def _oc(app) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=KEY_A, base_url="http://router.test/v1", max_retries=0,
                              http_client=httpx.AsyncClient(transport=httpx.ASGITransport(app=app), timeout=60))


async def _direct(vllm_url: str, max_tokens: int) -> tuple[str, float, dict]:
    async with httpx.AsyncClient(timeout=60) as c:
        r = await c.post(f"{vllm_url}/v1/chat/completions", json={
            "model": "tiny", "messages": MSG, "max_tokens": max_tokens, "temperature": 0, "logprobs": True})
    r.raise_for_status()
    ch = r.json()["choices"][0]
    lps = [t["logprob"] for t in ch["logprobs"]["content"]][:N]
    return ch["message"]["content"], math.exp(sum(lps) / len(lps)), r.json()["usage"]


def _config(vllm_url: str, burl: str, mode: str, min_conf: float, **routing):
    return make_config([vllm_url], burl, teams=[{"name": "team-a", "api_key_sha256": [hash_api_key(KEY_A)], "mode": mode}],
                       routing={"domain_adapters": {}, "cascade": {"min_confidence": min_conf, "tokens": N}, **routing})


async def test_non_streaming_cascade_escalates_below_and_keeps_above_the_real_confidence(
        vllm_url, fake_bedrock, settings, client_for):
    fb, burl = fake_bedrock
    text, conf, usage = await _direct(vllm_url, 12)
    ctx = client_for(settings, _config(vllm_url, burl, "cascade", min(1.0, conf * 1.05)))
    async with ctx:
        raw = await _oc(ctx.app).chat.completions.with_raw_response.create(
            model="auto", messages=MSG, max_tokens=12, temperature=0)
        r = raw.parse()
        assert raw.headers["x-tierwise-cascade"] == "escalated" and raw.headers["x-tierwise-tier"] == "2"
        assert float(raw.headers["x-tierwise-confidence"]) == pytest.approx(conf, rel=1e-3)
        assert r.choices[0].message.content == "Bonjour from Bedrock" and len(fb.requests) == 1
    entries, bad = read_ledger(settings.ledger_path)
    assert bad == 0 and [(e["tier"], e["status"]) for e in entries] == [(1, "escalated"), (2, "ok")]
    t1 = entries[0]
    assert (t1["prompt_tokens"], t1["completion_tokens"]) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert t1["cost_nano_usd"] > 0 and t1["usage_known"] and entries[1]["fallback"] == "cascade_low_confidence"
    assert entries[0]["request_id"] == entries[1]["request_id"]

    settings2 = settings.model_copy(update={"ledger_path": settings.ledger_path.with_name("kept.jsonl")})
    ctx = client_for(settings2, _config(vllm_url, burl, "cascade", conf * 0.95))
    async with ctx:
        raw = await _oc(ctx.app).chat.completions.with_raw_response.create(
            model="auto", messages=MSG, max_tokens=12, temperature=0)
        r = raw.parse()
        assert raw.headers["x-tierwise-cascade"] == "kept" and raw.headers["x-tierwise-tier"] == "1"
        assert r.choices[0].message.content == text and r.choices[0].logprobs is None  # the caller did not ask
        assert len(fb.requests) == 1
    entries, _ = read_ledger(settings2.ledger_path)
    assert [(e["tier"], e["status"]) for e in entries] == [(1, "ok")]


async def test_streaming_cascade_escalates_before_the_first_byte(vllm_url, fake_bedrock, settings, client_for):
    fb, burl = fake_bedrock
    _, conf, usage = await _direct(vllm_url, 24)
    ctx = client_for(settings, _config(vllm_url, burl, "cascade", min(1.0, conf * 1.05)))
    async with ctx:
        stream = await _oc(ctx.app).chat.completions.create(
            model="auto", messages=MSG, max_tokens=24, temperature=0, stream=True, stream_options={"include_usage": True})
        chunks = [c async for c in stream]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "Bonjour from Bedrock"  # not one Tier-1 token reached the client
    entries, _ = read_ledger(settings.ledger_path)
    assert [(e["tier"], e["status"]) for e in entries] == [(1, "escalated"), (2, "ok")]
    t1 = entries[0]
    assert t1["usage_known"] and t1["prompt_tokens"] == usage["prompt_tokens"]
    assert N <= t1["completion_tokens"] < 24  # the judged tokens, then the Tier-1 stream was dropped


async def test_streaming_cascade_keeps_a_confident_answer_unchanged(vllm_url, fake_bedrock, settings, client_for):
    fb, burl = fake_bedrock
    text, conf, usage = await _direct(vllm_url, 16)
    ctx = client_for(settings, _config(vllm_url, burl, "triage+cascade", conf * 0.95,
                                       target_tier2_share=0.0, cascade={"min_confidence": conf * 0.95, "tokens": N,
                                                                        "unsure_share": 1.0}))
    async with ctx:
        raw = await _oc(ctx.app).chat.completions.with_raw_response.create(
            model="auto", messages=MSG, max_tokens=16, temperature=0, stream=True, stream_options={"include_usage": True})
        assert raw.headers["x-tierwise-cascade"] == "kept"  # triage was unsure of everything: all cascade
        chunks = [c async for c in raw.parse()]
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
        assert all(c.choices[0].logprobs is None for c in chunks if c.choices)
        assert chunks[-1].usage.completion_tokens == usage["completion_tokens"] and not fb.requests
    entries, _ = read_ledger(settings.ledger_path)
    assert [(e["tier"], e["status"], e["completion_tokens"]) for e in entries] == [(1, "ok", usage["completion_tokens"])]
