"""The real `openai` client (with its own retries) against the router on a real socket while the upstreams
fail: Tier 1 answers 500, resets the connection mid-response or hangs past its timeout; Bedrock (its wire
protocol, through boto3) throttles. Each call must end in exactly one of: a completion, or one clean
OpenAI-style error (``openai.APIStatusError`` with the envelope's type and code) — never a connection
error, a timeout on the client, or an unparseable body. And every success is in the ledger once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from pathlib import Path

import httpx
import openai
import pytest
import uvicorn
from aiohttp import web
from conftest import KEY_A, boto_session, free_port, make_config, serve
from fakes import FakeBedrock, reset_mid_response, throttled

from tierwise_router.app import create_app
from tierwise_router.config import RouterConfig
from tierwise_router.ledger import read_ledger
from tierwise_router.observability import LOGGER
from tierwise_router.settings import Settings

pytestmark = pytest.mark.slow

HANG_S = 2.0
TIER1_TIMEOUT_S = 0.4


class FaultyTier1:
    """OpenAI-shaped Tier 1 whose behaviour is chosen by a marker in the last user message."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()

    def app(self) -> web.Application:
        a = web.Application()
        a.router.add_post("/v1/chat/completions", self.chat)
        a.router.add_get("/metrics", lambda r: web.Response(text="vllm:num_requests_waiting 0\n"))
        return a

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        text = body["messages"][-1]["content"]
        mode = text.split("T1=", 1)[1].split()[0]
        self.seen[mode] += 1
        out = json.dumps({"id": "c1", "object": "chat.completion", "created": 1, "model": body["model"],
                          "choices": [{"index": 0, "message": {"role": "assistant", "content": "tier one"},
                                       "finish_reason": "stop"}],
                          "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}}).encode()
        if mode == "500":
            return web.json_response({"error": {"message": "boom"}}, status=500)
        if mode == "hang":
            await asyncio.sleep(HANG_S)
        if mode == "reset":  # status line, headers, half the body, then RST
            return await reset_mid_response(request, out)
        return web.Response(body=out, content_type="application/json")


class ThrottlingBedrock(FakeBedrock):
    """The wire stub from fakes.py, throttling every call whose prompt carries ``T2=throttle``."""

    async def converse(self, request: web.Request) -> web.Response:
        body = await request.json()
        if "T2=throttle" in json.dumps(body):
            self.requests.append(body)
            return throttled()
        return await super().converse(request)


@pytest.fixture
async def router_on_socket(tmp_path: Path):
    t1 = FaultyTier1()
    bed = ThrottlingBedrock()
    r1, u1 = await serve(t1.app())
    r2, u2 = await serve(bed.app())
    d = make_config([u1], u2, routing={"breaker_failures": 1000}).model_dump(mode="json")  # breaker never opens:
    d["models"][0]["timeout_s"] = TIER1_TIMEOUT_S  # every call takes the fault path; a short Tier-1 timeout
    cfg = RouterConfig.model_validate(d)
    settings = Settings(env="test", ledger_path=tmp_path / "ledger.jsonl", ledger_fsync="batch",
                        scrape_interval_s=5)
    app = create_app(settings, config=cfg, boto_session=boto_session())
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, loop="none", http="httptools",
                                           lifespan="on", log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    assert server.started, "uvicorn did not start"

    async def stop() -> None:  # graceful: the lifespan seals the ledger
        if not task.done():
            server.should_exit = True
            await task

    yield f"http://127.0.0.1:{port}", t1, bed, tmp_path, stop
    await stop()
    await r1.cleanup()
    await r2.cleanup()


async def test_openai_client_with_retries_sees_success_or_one_clean_error(router_on_socket):
    base, t1, bed, tmp, stop = router_on_socket
    attempts: Counter[str] = Counter()

    async def count(request: httpx.Request) -> None:
        attempts[json.loads(request.content)["messages"][-1]["content"]] += 1

    http = httpx.AsyncClient(event_hooks={"request": [count]})
    oc = openai.AsyncOpenAI(api_key=KEY_A, base_url=base + "/v1", max_retries=2, timeout=15, http_client=http)
    cases = [(f"T1={m} T2={t2} #{i}", m, t2) for i in range(6) for m, t2 in
             (("ok", "ok"), ("500", "ok"), ("reset", "ok"), ("hang", "ok"))]
    cases += [(f"T1=500 T2=throttle #{i}", "500", "throttle") for i in range(2)]

    async def one(prompt: str) -> tuple[str, object]:
        try:
            raw = await oc.chat.completions.with_raw_response.create(
                model="tiny", messages=[{"role": "user", "content": prompt}], max_tokens=4)
            return "ok", (raw.parse(), raw.headers)
        except openai.APIStatusError as e:
            return "error", e
        except Exception as e:  # noqa: BLE001 — anything else is the failure this test exists to catch
            return "broken", e

    outcomes = await asyncio.gather(*(one(p) for p, _, _ in cases))
    await http.aclose()
    for (prompt, t1_mode, t2_mode), (kind, val) in zip(cases, outcomes):
        assert kind != "broken", f"{prompt}: {val!r}"
        if t2_mode == "throttle":
            assert kind == "error", prompt
            assert isinstance(val, openai.RateLimitError), f"{prompt}: {val!r}"
            assert val.body["code"] == "upstream_throttled" and val.body["type"] == "rate_limit_error"
            assert attempts[prompt] == 3, "max_retries=2: the client retried the router's 429 twice"
            continue
        assert kind == "ok", f"{prompt}: {val!r}"
        completion, headers = val
        assert completion.choices[0].message.content
        assert attempts[prompt] == 1, f"{prompt}: a recovered fault must not cost the client a retry"
        if t1_mode == "ok":
            assert headers.get("x-tierwise-tier") == "1" and completion.choices[0].message.content == "tier one"
        else:
            expect = {"500": "tier1_status", "reset": "tier1_connect", "hang": "tier1_timeout"}[t1_mode]
            assert headers.get("x-tierwise-tier") == "2" and headers.get("x-tierwise-fallback") == expect, prompt
    assert t1.seen["reset"] >= 6 and t1.seen["hang"] == 6  # the faults really happened
    # Bedrock: max_attempts (3 in make_config) per router call × 3 client attempts, for each throttled prompt
    assert sum(1 for b in bed.requests if "T2=throttle" in json.dumps(b)) == 2 * 3 * 3

    # The ledger has exactly the successes, once each (read after a graceful stop sealed it).
    await stop()
    ok_ids = {v[1]["x-request-id"] for k, v in outcomes if k == "ok"}
    assert len(ok_ids) == 24
    entries = []
    for f in [tmp / "ledger.jsonl", *sorted((tmp / "sealed").glob("*.jsonl"))]:
        if f.exists():
            entries += read_ledger(f)[0]
    ids = [e["request_id"] for e in entries]
    assert len(ids) == len(set(ids)) and set(ids) == ok_ids


# ------------------------------------------------------------------------------- the budget store under pressure
@pytest.mark.e2e
async def test_redis_burst_wider_than_the_pool_waits_and_stays_exact(redis_url):
    """bench/router_faults.py found it: redis-py's async pool *raises* past its size, so a burst turned into
    500s and leaked reservations. With the blocking pool, 300 concurrent reserve→settle on 4 connections
    all succeed and the counters equal the settled amounts exactly."""
    import datetime as dt

    from tierwise_router.budgets import RedisBudgets
    from tierwise_router.config import Budgets

    b = RedisBudgets(redis_url, max_connections=4)
    now = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
    team = "burst-team"

    async def one(i: int) -> None:
        r = await b.reserve(team, Budgets(tokens_per_day=10**9), 100, 1000, now, request_id=f"rid-{i}")
        assert r.request_id == f"rid-{i}"
        await asyncio.sleep(0)
        if i % 3 == 0:
            await b.release(r)
        else:
            await b.settle(r, 7, 70)

    try:
        await asyncio.gather(*(one(i) for i in range(300)))
        settled = sum(1 for i in range(300) if i % 3)
        assert await b.usage(team, now) == (7 * settled, 70 * settled)
    finally:
        await b.aclose()


async def test_unreachable_budget_store_is_a_clean_503_before_any_model_runs(tmp_path, fake_vllm, client_for):
    fake, url = fake_vllm
    s = Settings(env="test", ledger_path=tmp_path / "l.jsonl", scrape_interval_s=5, budget_backend="redis",
                 redis_url=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    records: list[logging.LogRecord] = []
    grab = logging.Handler(logging.ERROR)
    grab.emit = records.append  # type: ignore[method-assign]  # the app's logger does not propagate to caplog's
    async with client_for(s, make_config([url])) as c:
        logging.getLogger(LOGGER).addHandler(grab)
        try:
            r = await c.post("/v1/chat/completions", headers={"authorization": f"Bearer {KEY_A}",
                                                              "x-request-id": "rid-503"},
                             json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}]})
        finally:
            logging.getLogger(LOGGER).removeHandler(grab)
    assert r.status_code == 503, r.text
    assert [x.request_id for x in records if x.getMessage() == "budget_store_unavailable"] == ["rid-503"]
    assert r.json()["error"]["code"] == "budget_store_unavailable" and r.headers["retry-after"] == "1"
    assert fake.calls == []


async def test_failed_settle_is_logged_with_amounts_not_raised(caplog):
    from tierwise_router.budgets import RedisBudgets, Reservation

    b = RedisBudgets(f"redis://127.0.0.1:{free_port()}/0", pool_timeout_s=0.5)
    r = Reservation("t", "tk", "uk", 100, 1000, "rid-settle-1")
    with caplog.at_level("ERROR", logger="tierwise_router"):
        await b.settle(r, 7, 70)  # the request was served: this must not turn it into an error
    rec = [x for x in caplog.records if x.getMessage() == "budget_settle_failed"]
    assert rec and rec[0].reserved_tokens == 100 and rec[0].actual_tokens == 7
    assert rec[0].request_id == "rid-settle-1"  # joins the line to the request's chat line and ledger entry
    await b.aclose()
