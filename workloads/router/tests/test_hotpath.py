"""The lean pieces of the hot path: the raw HTTP/1.1 pool (real sockets, loopback servers), the raw
ASGI chat dispatch, exact integer prices, cached metric children, the ledger's group commit."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal
from fractions import Fraction

import pytest
from aiohttp import web
from conftest import KEY_A, free_port, make_config, serve

from tierwise_router.config import ExactPrice, SelfHostedPrice, TokenPrice
from tierwise_router.ledger import Ledger, read_ledger
from tierwise_router.upstreams import h1

H = {"authorization": f"Bearer {KEY_A}"}
STATE = web.AppKey("state", dict)
MSG = [{"role": "user", "content": "Say hello."}]


def echo_app(**kw) -> web.Application:
    state = {"n": 0}
    release: asyncio.Event | None = kw.get("release")

    async def chat(request: web.Request) -> web.StreamResponse:
        state["n"] += 1
        body = await request.read()
        if release is not None:
            await release.wait()
        if kw.get("chunked"):
            resp = web.StreamResponse(status=200, headers={"content-type": "application/json"})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for part in (b'{"echo":', body, b"}"):
                await resp.write(part)
            await resp.write_eof()
            return resp
        headers = {"connection": "close"} if kw.get("close") else None
        return web.Response(body=b'{"echo":' + body + b"}", status=kw.get("status", 200),
                            content_type="application/json", headers=headers)

    a = web.Application()
    a.router.add_post("/v1/chat/completions", chat)
    a[STATE] = state
    return a


async def test_pool_reuses_one_keep_alive_connection():
    runner, url = await serve(echo_app())
    pool = h1.H1Pool(url)
    try:
        for i in range(5):
            status, data = await pool.post("/v1/chat/completions", b'{"i":%d}' % i, 5)
            assert status == 200 and data == b'{"echo":{"i":%d}}' % i
        assert pool.connects == 1
    finally:
        pool.close()
        await runner.cleanup()


async def test_pool_handles_connection_close_chunked_bodies_and_error_statuses():
    for kw, expect in (({"close": True}, 200), ({"chunked": True}, 200), ({"status": 500}, 500)):
        runner, url = await serve(echo_app(**kw))
        pool = h1.H1Pool(url)
        try:
            for _ in range(3):
                status, data = await pool.post("/v1/chat/completions", b'{"a":1}', 5)
                assert status == expect and data == b'{"echo":{"a":1}}'
            assert pool.connects == (3 if kw.get("close") else 1)
        finally:
            pool.close()
            await runner.cleanup()


async def test_pool_never_opens_more_than_its_limit_and_serves_waiters_in_turn():
    release = asyncio.Event()
    app = echo_app(release=release)
    runner, url = await serve(app)
    pool = h1.H1Pool(url, limit=2)
    try:
        tasks = [asyncio.create_task(pool.post("/v1/chat/completions", b'{"i":%d}' % i, 10)) for i in range(6)]
        while app[STATE]["n"] < 2:
            await asyncio.sleep(0)  # event-driven: until both connections are in the handler
        assert pool.connects == 2 and not any(t.done() for t in tasks)
        release.set()
        results = await asyncio.gather(*tasks)
        assert [d for _, d in results] == [b'{"echo":{"i":%d}}' % i for i in range(6)]
        assert pool.connects == 2
    finally:
        pool.close()
        await runner.cleanup()


async def test_pool_connect_refused_and_timeout_are_distinct_and_drop_the_connection():
    pool = h1.H1Pool(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(h1.ConnectError):
        await pool.post("/v1/chat/completions", b"{}", 5)
    release = asyncio.Event()
    runner, url = await serve(echo_app(release=release))
    pool = h1.H1Pool(url)
    try:
        with pytest.raises(TimeoutError):
            await pool.post("/v1/chat/completions", b"{}", 0.05)
        release.set()
        status, _ = await pool.post("/v1/chat/completions", b"{}", 5)
        assert status == 200 and pool.connects == 2  # the timed-out connection was not reused
    finally:
        pool.close()
        await runner.cleanup()


async def test_pool_retries_once_when_a_reused_connection_was_closed_before_any_answer():
    """A raw server that answers the first request on each connection and silently closes on the second
    (what a keep-alive timeout looks like from the client): the call succeeds on a fresh connection."""
    seen: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        n = 0
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int([ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")][0]
                         .split(b":")[1])
            await reader.readexactly(length)
            n += 1
            seen.append(n)
            if n == 2:
                writer.close()
                return
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}")
            await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = h1.H1Pool(f"http://127.0.0.1:{port}")
    try:
        assert await pool.post("/x", b"{}", 5) == (200, b"{}")
        assert await pool.post("/x", b"{}", 5) == (200, b"{}")
        assert pool.connects == 2 and seen == [1, 2, 1]
    finally:
        pool.close()
        server.close()
        await server.wait_closed()


def test_fails_on_non_http_pool_url():
    with pytest.raises(ValueError, match="plain http"):
        h1.H1Pool("https://vllm:8000")


def test_exact_price_equals_the_rational_cost_rounded_up():
    rnd = random.Random(5)
    for _ in range(300):
        if rnd.random() < 0.5:
            p = SelfHostedPrice(gpu_hour_usd=Decimal(rnd.randint(1, 10_000)) / 100, tokens_per_s=rnd.randint(1, 9999))
            pin = pout = Fraction(p.gpu_hour_usd) / 3600 / Fraction(p.tokens_per_s)
        else:
            p = TokenPrice(input_usd_per_mtok=Decimal(rnd.randint(0, 10**6)) / 1000,
                           output_usd_per_mtok=Decimal(rnd.randint(0, 10**6)) / 1000)
            pin, pout = Fraction(p.input_usd_per_mtok) / 10**6, Fraction(p.output_usd_per_mtok) / 10**6
        pt, ct = rnd.randint(0, 200_000), rnd.randint(0, 50_000)
        exact = (pin * pt + pout * ct) * 10**9
        got = ExactPrice(p).cost_nano(pt, ct)
        assert got - 1 < exact <= got


async def test_chat_route_other_methods_get_the_405_envelope_and_bad_bodies_the_400(settings, fake_vllm,
                                                                                 client_for):
    _, url = fake_vllm
    async with client_for(settings, make_config([url])) as c:
        r = await c.get("/v1/chat/completions", headers=H)
        assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
        r = await c.post("/v1/chat/completions", headers=H, content=b"[1, 2]")
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
        assert r.headers["x-request-id"]


async def test_chat_body_over_the_limit_is_413_even_when_streamed_in_chunks(settings, fake_vllm, client_for):
    fake, url = fake_vllm
    s = settings.model_copy(update={"max_body_bytes": 1000})

    async def chunks():
        for _ in range(10):
            yield b"x" * 200

    async with client_for(s, make_config([url])) as c:
        r = await c.post("/v1/chat/completions", headers=H, content=chunks())
        assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
    assert fake.calls == []


async def test_chat_unexpected_error_is_a_500_envelope_with_the_request_id(settings, fake_vllm, client_for,
                                                                          monkeypatch):
    _, url = fake_vllm
    ctx = client_for(settings, make_config([url]))
    async with ctx as c:
        st = ctx.app.state.router

        def boom(*a, **k):
            raise RuntimeError("bug")

        monkeypatch.setattr(st.pacer, "try_admit", boom)
        r = await c.post("/v1/chat/completions", headers=H | {"x-request-id": "rid-500"},
                         json={"model": "tiny", "messages": MSG})
        assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
        assert r.headers["x-request-id"] == "rid-500"


async def test_metric_children_are_cached_and_counted(settings, fake_vllm, client_for):
    _, url = fake_vllm
    ctx = client_for(settings, make_config([url]))
    async with ctx as c:
        for _ in range(3):
            assert (await c.post("/v1/chat/completions", headers=H,
                                 json={"model": "tiny", "messages": MSG})).status_code == 200
        m = ctx.app.state.metrics
        assert m.child(m.requests, "team-a", "tiny", "1", "200") is m.requests.labels("team-a", "tiny", "1", "200")
        text = (await c.get("/metrics")).text
        assert 'tierwise_router_requests_total{model="tiny",status="200",team="team-a",tier="1"} 3.0' in text


def test_batched_ledger_group_commits_and_loses_nothing_on_close(tmp_path):
    led = Ledger(tmp_path / "l.jsonl", "batch", batch_window_s=0.05)
    for i in range(200):
        led.append({"i": i})
    led.close()
    entries, bad = read_ledger(tmp_path / "l.jsonl")
    assert bad == 0 and [e["i"] for e in entries] == list(range(200))
    assert led.batches < 200  # grouped, not one fsync per entry
