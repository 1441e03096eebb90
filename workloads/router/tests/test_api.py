"""Router behaviour through the in-process ASGI client, against a loopback fake vLLM."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest
from conftest import KEY_A, KEY_B, make_config

from tierwise_router.ledger import read_ledger
from tierwise_router.ratelimit import Pacer

H = {"authorization": f"Bearer {KEY_A}"}
MSG = [{"role": "user", "content": "Say hello."}]


async def test_unknown_key_is_401_with_openai_envelope(settings, fake_vllm, client_for):
    _, url = fake_vllm
    async with client_for(settings, make_config([url])) as c:
        r = await c.post("/v1/chat/completions", json={"model": "tiny", "messages": MSG},
                         headers={"authorization": "Bearer nope"})
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_api_key"
        r = await c.post("/v1/chat/completions", json={"model": "tiny", "messages": MSG})
        assert r.status_code == 401


async def test_models_lists_auto_concrete_and_adapters_filtered_by_team(settings, fake_vllm, client_for):
    _, url = fake_vllm
    async with client_for(settings, make_config([url])) as c:
        ids = [m["id"] for m in (await c.get("/v1/models", headers=H)).json()["data"]]
        assert ids == ["auto", "tiny", "tiny:billing", "tiny:support"]
        ids_b = [m["id"] for m in (await c.get("/v1/models", headers={"authorization": f"Bearer {KEY_B}"})).json()["data"]]
        assert ids_b == ["auto", "tiny"]


async def test_bad_input_gets_clear_400(settings, fake_vllm, client_for):
    _, url = fake_vllm
    async with client_for(settings, make_config([url])) as c:
        r = await c.post("/v1/chat/completions", content=b"{not json", headers=H)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
        r = await c.post("/v1/chat/completions", json={"model": "tiny", "messages": []}, headers=H)
        assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
        r = await c.post("/v1/chat/completions", json={"model": "gpt-9", "messages": MSG}, headers=H)
        assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
        r = await c.post("/v1/chat/completions", json={"model": "tiny:billing", "messages": MSG},
                         headers={"authorization": f"Bearer {KEY_B}"})
        assert r.status_code == 403


async def test_adapter_request_reaches_vllm_with_adapter_name_and_is_priced(settings, fake_vllm, client_for):
    fake, url = fake_vllm
    async with client_for(settings, make_config([url])) as c:
        r = await c.post("/v1/chat/completions", headers=H,
                         json={"model": "tiny:billing", "messages": MSG, "max_tokens": 5, "seed": 3})
        assert r.status_code == 200, r.text
        assert fake.calls[-1]["model"] == "billing"
        assert fake.calls[-1]["seed"] == 3  # unknown-to-us fields pass through
        assert r.headers["x-tierwise-route"] == "tier1:tiny:billing"
        # 7 prompt + 5 completion tokens at 1.80 $/h / 3600 s / 1000 tok/s = 5e-7 $/token
        assert r.headers["x-tierwise-cost-usd"] == "0.000006000"
        metrics = (await c.get("/metrics")).text
        assert 'tierwise_router_tokens_total{direction="in",model="tiny",team="team-a",tier="1"} 7.0' in metrics
    entries, bad = read_ledger(settings.ledger_path)
    assert bad == 0 and entries[-1]["cost_nano_usd"] == 6000 and entries[-1]["adapter"] == "billing"


async def test_auto_routes_through_triage(settings, fake_vllm, client_for):
    fake, url = fake_vllm
    async with client_for(settings, make_config([url])) as c:  # no tier 2 configured → always tier 1
        r = await c.post("/v1/chat/completions", headers=H, json={
            "model": "auto", "messages": [{"role": "user", "content": "What is 17 times 23? Show the steps."}]})
        assert r.status_code == 200
        assert r.headers["x-tierwise-tier"] == "1"
        assert r.headers["x-tierwise-route"] == "tier1:tiny:billing"  # math domain → billing adapter
        assert float(r.headers["x-tierwise-triage-score"]) > 0
        assert "tierwise_router_triage_decisions_total" in (await c.get("/metrics")).text


async def test_openai_client_streaming_with_usage(settings, fake_vllm, client_for):
    fake, url = fake_vllm
    ctx = client_for(settings, make_config([url]))
    async with ctx:
        oc = openai.AsyncOpenAI(api_key=KEY_A, base_url="http://router.test/v1",
                                http_client=httpx.AsyncClient(transport=httpx.ASGITransport(app=ctx.app)))
        stream = await oc.chat.completions.create(model="tiny", messages=MSG, stream=True, max_tokens=4,
                                                  stream_options={"include_usage": True})
        text, usage = "", None
        async for ch in stream:
            if ch.choices:
                text += ch.choices[0].delta.content or ""
            if ch.usage:
                usage = ch.usage
        assert text == "hello from tiny"
        assert usage is not None and usage.completion_tokens == 4
        # without include_usage the caller gets no usage chunk, but the router still settles from it
        stream = await oc.chat.completions.create(model="tiny", messages=MSG, stream=True, max_tokens=4)
        chunks = [ch async for ch in stream]
        assert all(ch.usage is None for ch in chunks) and all(ch.choices for ch in chunks)
        assert fake.calls[-1]["stream_options"]["include_usage"] is True
    entries, _ = read_ledger(settings.ledger_path)
    assert [e["usage_known"] for e in entries] == [True, True]


async def test_tier1_failure_without_tier2_is_clean_503(settings, fake_vllm, client_for):
    fake, url = fake_vllm
    fake.mode = "error500"
    async with client_for(settings, make_config([url])) as c:
        r = await c.post("/v1/chat/completions", headers=H, json={"model": "tiny", "messages": MSG})
        assert r.status_code == 503 and r.json()["error"]["code"] == "upstream_unavailable"


async def test_upstream_4xx_is_passed_through_not_fallen_back(settings, fake_vllm, fake_bedrock, client_for):
    fake, url = fake_vllm
    fake.mode = "http400"
    fb, burl = fake_bedrock
    async with client_for(settings, make_config([url], burl)) as c:
        r = await c.post("/v1/chat/completions", headers=H, json={"model": "tiny", "messages": MSG})
        assert r.status_code == 400 and "context too long" in r.text
        assert fb.requests == []


async def test_midstream_failure_ends_with_explicit_sse_error(settings, fake_vllm, client_for):
    fake, url = fake_vllm
    fake.mode = "die_midstream"
    async with client_for(settings, make_config([url])) as c:
        async with c.stream("POST", "/v1/chat/completions", headers=H,
                            json={"model": "tiny", "messages": MSG, "stream": True}) as r:
            assert r.status_code == 200
            body = b"".join([b async for b in r.aiter_bytes()])
        assert b"hello" in body
        assert body.rstrip().endswith(b'"param":null}}')
        assert b"event: error" in body and b"stream_interrupted" in body and b"[DONE]" not in body
    entries, _ = read_ledger(settings.ledger_path)
    assert entries[-1]["status"] == "interrupted" and entries[-1]["usage_known"] is False


async def test_midstream_failure_raises_in_openai_client(settings, fake_vllm, client_for):
    fake, url = fake_vllm
    fake.mode = "die_midstream"
    ctx = client_for(settings, make_config([url]))
    async with ctx:
        oc = openai.AsyncOpenAI(api_key=KEY_A, base_url="http://router.test/v1",
                                http_client=httpx.AsyncClient(transport=httpx.ASGITransport(app=ctx.app)))
        stream = await oc.chat.completions.create(model="tiny", messages=MSG, stream=True)
        with pytest.raises(openai.APIError, match="stream failed after it started"):
            async for _ in stream:
                pass


async def test_budget_exhausted_is_429_naming_the_budget(settings, fake_vllm, client_for):
    _, url = fake_vllm
    from conftest import hash_api_key

    teams = [{"name": "team-a", "api_key_sha256": [hash_api_key(KEY_A)], "budgets": {"usd_per_month": "0.000001"}}]
    async with client_for(settings, make_config([url], teams=teams)) as c:
        r = await c.post("/v1/chat/completions", headers=H, json={"model": "tiny", "messages": MSG, "max_tokens": 50})
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "budget_usd_per_month"
        assert "usd_per_month" in r.json()["error"]["message"]
        assert 'reason="usd_per_month"' in (await c.get("/metrics")).text


async def test_rate_limit_queue_then_429_with_retry_after(settings, fake_vllm, client_for):
    _, url = fake_vllm
    from conftest import hash_api_key

    now = [1000.0]
    slept: list[float] = []

    async def fake_sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    pacer = Pacer(clock=lambda: now[0], sleep=fake_sleep)
    teams = [{"name": "team-a", "api_key_sha256": [hash_api_key(KEY_A)],
              "rate_limits": {"rpm": 2, "max_wait_s": 40, "max_queue": 4}}]
    async with client_for(settings, make_config([url], teams=teams), pacer=pacer) as c:
        codes = []
        for _ in range(4):
            r = await c.post("/v1/chat/completions", headers=H, json={"model": "tiny", "messages": MSG})
            codes.append(r.status_code)
        # 2 immediately; the 3rd waits 30 s (one request per 30 s), within max_wait; the 4th would need
        # 60 s after the fake clock advanced 30 s → still 30 s → waits again.
        assert codes == [200, 200, 200, 200] and slept == [30.0, 30.0]
        pacer2 = Pacer(clock=lambda: now[0], sleep=fake_sleep)
        teams2 = [{"name": "team-a", "api_key_sha256": [hash_api_key(KEY_A)],
                   "rate_limits": {"rpm": 1, "max_wait_s": 5}}]
    async with client_for(settings, make_config([url], teams=teams2), pacer=pacer2) as c:
        assert (await c.post("/v1/chat/completions", headers=H, json={"model": "tiny", "messages": MSG})).status_code == 200
        r = await c.post("/v1/chat/completions", headers=H, json={"model": "tiny", "messages": MSG})
        assert r.status_code == 429 and r.headers["retry-after"] == "60"
        assert r.json()["error"]["code"] == "rate_limit_rpm"


async def test_breaker_opens_after_failures_then_skips_replica(settings, fake_vllm, fake_bedrock, client_for):
    fake, url = fake_vllm
    fake.mode = "error500"
    fb, burl = fake_bedrock
    async with client_for(settings, make_config([url], burl)) as c:
        for _ in range(5):
            r = await c.post("/v1/chat/completions", headers=H, json={"model": "tiny", "messages": MSG})
            assert r.status_code == 200 and r.headers["x-tierwise-tier"] == "2"
        # breaker_failures = 3: the first 3 hit vLLM, then the open circuit is skipped
        assert len(fake.calls) == 3
        assert r.headers["x-tierwise-fallback"] == "breaker_open"
        m = (await c.get("/metrics")).text
        assert 'tierwise_router_fallbacks_total{reason="tier1_status"} 3.0' in m
        assert 'tierwise_router_breaker_open{upstream="%s"} 1.0' % url in m


async def test_saturated_replica_falls_back_before_first_byte(settings, fake_vllm, fake_bedrock, client_for):
    fake, url = fake_vllm
    fake.waiting = 100
    fb, burl = fake_bedrock
    ctx = client_for(settings, make_config([url], burl, routing={"saturation_waiting": 8}))
    async with ctx as c:
        st = ctx.app.state.router
        for _ in range(3000):  # up to ~30 s under load; wait for the scraper (event-driven: poll state, no fixed sleep)
            if st.replicas[0].waiting == 100:
                break
            await asyncio.sleep(0.01)
        assert st.replicas[0].waiting == 100
        r = await c.post("/v1/chat/completions", headers=H, json={"model": "tiny", "messages": MSG})
        assert r.status_code == 200 and r.headers["x-tierwise-fallback"] == "saturated"
        assert fake.calls == [] and len(fb.requests) == 1


async def test_unreachable_tier1_streams_from_tier2(settings, fake_bedrock, client_for):
    fb, burl = fake_bedrock
    from conftest import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    ctx = client_for(settings, make_config([dead], burl))
    async with ctx:
        oc = openai.AsyncOpenAI(api_key=KEY_A, base_url="http://router.test/v1",
                                http_client=httpx.AsyncClient(transport=httpx.ASGITransport(app=ctx.app)))
        raw = await oc.chat.completions.with_raw_response.create(
            model="tiny", messages=MSG, stream=True, stream_options={"include_usage": True})
        assert raw.headers["x-tierwise-fallback"] == "tier1_connect"
        chunks = [ch async for ch in raw.parse()]
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "Bonjour from Bedrock"
        assert chunks[-1].usage.prompt_tokens == 11
    entries, _ = read_ledger(settings.ledger_path)
    assert entries[-1]["tier"] == 2 and entries[-1]["fallback"] == "tier1_connect"
    # 11 in × 3 $/M + 3 out × 15 $/M = 78e-6 $
    assert entries[-1]["cost_nano_usd"] == 78_000


async def test_health_ready_and_metrics(settings, fake_vllm, client_for):
    _, url = fake_vllm
    async with client_for(settings, make_config([url])) as c:
        assert (await c.get("/healthz")).json() == {"status": "ok"}
        r = await c.get("/readyz")
        assert r.status_code == 200 and r.json()["checks"][url] is True
        assert (await c.get("/nope")).json()["error"]["code"] == "not_found"
        assert "tierwise_router_queue_depth" in (await c.get("/metrics")).text
