"""Tail-latency levers that have behaviour to check: the start-up GC freeze and the GC pause metric."""

from __future__ import annotations

import gc

from conftest import KEY_A, make_config

from tierwise_router.settings import Settings


async def test_startup_freezes_the_heap_and_gc_pauses_are_measured(tmp_path, fake_vllm, client_for):
    _, url = fake_vllm
    s = Settings(env="test", ledger_path=tmp_path / "l.jsonl", scrape_interval_s=5)
    assert gc.get_freeze_count() == 0
    async with client_for(s, make_config([url])) as c:
        frozen = gc.get_freeze_count()
        assert frozen > 1000  # start-up objects (config, schemas, app) are in the permanent generation
        gc.collect()
        m = (await c.get("/metrics")).text
        count = [ln for ln in m.splitlines() if ln.startswith('tierwise_router_gc_pause_seconds_count{generation="2"}')]
        assert count and float(count[0].rsplit(" ", 1)[1]) >= 1
    assert gc.get_freeze_count() == 0  # shutdown unfreezes (many apps live in one test process)


async def test_gc_freeze_can_be_turned_off(tmp_path, fake_vllm, client_for):
    _, url = fake_vllm
    s = Settings(env="test", ledger_path=tmp_path / "l.jsonl", scrape_interval_s=5, gc_freeze=False)
    async with client_for(s, make_config([url])) as c:
        assert gc.get_freeze_count() == 0
        assert (await c.get("/healthz")).status_code == 200


def test_half_open_replica_with_its_trial_in_flight_is_not_picked():
    from tierwise_router.balancer import Replica, choose
    from tierwise_router.breaker import Breaker

    t = [0.0]
    a = Replica("http://a", Breaker(1, 5.0, clock=lambda: t[0]))
    b = Replica("http://b", Breaker(1, 5.0, clock=lambda: t[0]))
    b.inflight = 10  # busier: without breakers, `a` wins every key
    a.breaker.failure()
    t[0] = 6.0  # a: half-open
    assert all(choose([a, b], k, 16) is a for k in range(50))
    assert a.breaker.allow()  # the trial call is claimed ...
    assert all(choose([a, b], k, 16) is b for k in range(50))  # ... so others go to the healthy replica
    a.breaker.success()
    assert choose([a, b], 1, 16) is a


async def test_event_loop_lag_is_measured_and_a_stall_shows():
    import asyncio
    import time

    from tierwise_router.observability import make_metrics, watch_loop_lag

    m = make_metrics()
    task = asyncio.create_task(watch_loop_lag(m.loop_lag, period_s=0.01))
    await asyncio.sleep(0.05)
    time.sleep(0.06)  # a blocking call on the loop: the watcher's next wake-up is ~60 ms late
    await asyncio.sleep(0.03)
    task.cancel()
    samples = {s.name + s.labels.get("le", ""): s.value for mf in m.registry.collect() for s in mf.samples
               if s.name.startswith("tierwise_router_event_loop_lag_seconds")}
    assert samples["tierwise_router_event_loop_lag_seconds_count"] >= 3
    assert samples["tierwise_router_event_loop_lag_seconds_bucket0.025"] < samples[
        "tierwise_router_event_loop_lag_seconds_count"]  # one observation above 25 ms: the stall


async def test_request_log_line_is_written_after_the_response_and_still_complete(tmp_path, fake_vllm, client_for):
    """The per-request JSON line moved off the latency path (event_after, then the writer thread) but must
    still be written, once, with its fields — bytes straight to the stream's binary buffer."""
    import asyncio
    import io
    import json
    import logging

    from tierwise_router.observability import LOGGER

    _, url = fake_vllm
    s = Settings(env="test", ledger_path=tmp_path / "l.jsonl", scrape_interval_s=5)
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    async with client_for(s, make_config([url])) as c:
        h = [h for h in logging.getLogger(LOGGER).handlers if getattr(h, "_tierwise_logs", False)][0]
        h.setStream(stream)
        r = await c.post("/v1/chat/completions", headers={"authorization": f"Bearer {KEY_A}",
                                                          "x-request-id": "rid-log-1"},
                         json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200
        # the deferred line is handed to the writer, which writes it from its own thread: wait for it
        # (bounded: a loaded machine may run that thread late), then one more window for a duplicate
        deadline = asyncio.get_running_loop().time() + 10
        while b'"chat"' not in raw.getvalue() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(h.window_s)
        await asyncio.sleep(3 * h.window_s)
        lines = [json.loads(x) for x in raw.getvalue().splitlines() if b'"chat"' in x]
    assert len(lines) == 1
    ln = lines[0]
    assert ln["event"] == "chat" and ln["request_id"] == "rid-log-1" and ln["status"] == 200
    assert ln["ts"].endswith("Z") and ln["latency_ms"] > 0 and ln["route"] == "tier1"


def test_scrape_parser_sums_only_the_exact_series():
    from tierwise_router.upstreams.vllm import parse_waiting

    text = ("# HELP vllm:num_requests_waiting Requests waiting\n# TYPE vllm:num_requests_waiting gauge\n"
            'vllm:num_requests_waiting{engine="0",model_name="tiny"} 2.0\n'
            'vllm:num_requests_waiting{model_name="a b"} 5.0 1700000000\n'
            "vllm:num_requests_waiting_total 99\n"
            "vllm:num_requests_running 4")
    assert parse_waiting(text) == (7, 4)
    assert parse_waiting("vllm:num_requests_running 1\n") == (0, 1)
    assert parse_waiting("") == (0, 0)


def test_log_writer_batches_off_thread_bounds_its_backlog_and_flushes():
    import io
    import json
    import logging
    import threading

    from tierwise_logs import LineFormatter
    from tierwise_router.observability import JsonLineHandler

    class Blocked(io.RawIOBase):  # a stderr whose reader stalled: write() blocks until released
        def __init__(self) -> None:
            self.gate, self.data = threading.Event(), bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b) -> int:  # noqa: ANN001
            self.gate.wait(10)
            self.data += bytes(b)
            return len(b)

    raw = Blocked()
    h = JsonLineHandler(io.TextIOWrapper(io.BufferedWriter(raw), write_through=True), window_s=0.01, max_pending=100)
    h.setFormatter(LineFormatter("svc"))
    lg = logging.getLogger("tierwise_router.test_writer")
    lg.propagate = False
    lg.addHandler(h)
    try:
        import time

        t = time.perf_counter()
        for i in range(300):  # the caller never blocks, even while the stream does
            lg.warning("line", extra={"i": i})
        assert time.perf_counter() - t < 0.5
        raw.gate.set()
        h.flush()
        lines = [json.loads(x) for x in bytes(raw.data).splitlines()]
    finally:
        lg.removeHandler(h)
    kept = [x["i"] for x in lines if x.get("event") == "line"]
    assert kept == sorted(kept) and 100 <= len(kept) < 300  # in order; bounded while blocked
    dropped = sum(x["count"] for x in lines if x.get("event") == "log_lines_dropped")
    assert len(kept) + dropped == 300
