"""Metrics (a registry per app, created in the factory) and JSON logs (one event per line, the shared
convention of docs/logging.md via tierwise_logs; written off the event loop by JsonLineHandler)."""

from __future__ import annotations

import asyncio
import collections
import contextvars
import functools
import gc
import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from tierwise_logs import configure

LOGGER = "tierwise_router"
_LAT = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


@dataclass
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    ttft: Histogram
    tokens: Counter
    cost: Counter
    fallbacks: Counter
    triage: Counter
    rejections: Counter
    queue_depth: Gauge
    upstream_errors: Counter
    breaker_open: Gauge
    upstream_waiting: Gauge
    gc_pause: Histogram
    loop_lag: Histogram
    ledger_backlog: Gauge
    ledger_full: Gauge
    ledger_shipped: Counter
    ledger_ship_failures: Counter
    _children: dict = field(default_factory=dict, repr=False)

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached per (metric, labels). ``labels()`` validates and takes a
        lock on every call (~2 µs; 7 calls per request); label values here are all bounded (config
        names, tiers, HTTP statuses, fixed reasons), so the cache is bounded too."""
        k = (id(metric), labels)
        c = self._children.get(k)
        if c is None:
            c = self._children[k] = metric.labels(*labels)
        return c


def make_metrics() -> Metrics:
    r = CollectorRegistry(auto_describe=True)
    p = "tierwise_router_"
    return Metrics(
        registry=r,
        requests=Counter(p + "requests", "Chat requests by outcome", ["team", "model", "tier", "status"], registry=r),
        latency=Histogram(p + "request_latency_seconds", "End-to-end latency", ["tier", "stream"],
                          buckets=_LAT, registry=r),
        ttft=Histogram(p + "ttft_seconds", "Time to first streamed byte", ["tier"], buckets=_LAT, registry=r),
        tokens=Counter(p + "tokens", "Tokens by direction", ["team", "model", "tier", "direction"], registry=r),
        cost=Counter(p + "cost_usd", "Cost in USD (self-hosted amortised)", ["team", "model", "tier"], registry=r),
        fallbacks=Counter(p + "fallbacks", "Tier-1 → Tier-2 fallbacks", ["reason"], registry=r),
        triage=Counter(p + "triage_decisions", "Triage decisions", ["tier", "domain"], registry=r),
        rejections=Counter(p + "rejections", "429s by budget or limit", ["team", "reason"], registry=r),
        queue_depth=Gauge(p + "queue_depth", "Requests waiting at the front door (KEDA scales on it)",
                          ["team"], registry=r),
        upstream_errors=Counter(p + "upstream_errors", "Upstream failures", ["upstream", "kind"], registry=r),
        breaker_open=Gauge(p + "breaker_open", "1 when the upstream's circuit is open", ["upstream"], registry=r),
        upstream_waiting=Gauge(p + "upstream_waiting", "Scraped vllm:num_requests_waiting", ["upstream"],
                               registry=r),
        gc_pause=Histogram(p + "gc_pause_seconds", "Garbage-collector pauses of this process (the event loop "
                           "stands still for each)", ["generation"],
                           buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
                           registry=r),
        loop_lag=Histogram(p + "event_loop_lag_seconds", "How late a 100 ms timer fires: every stall of the event "
                           "loop (GC, a blocking call, CPU starvation) delays every request in flight by as much",
                           buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
                           registry=r),
        # the usage ledger (shipper.py): what is on local disk and not yet confirmed by the durable store
        ledger_backlog=Gauge(p + "ledger_backlog_bytes", "Ledger bytes on local disk not yet confirmed by the store",
                             registry=r),
        ledger_full=Gauge(p + "ledger_full", "1 when the local ledger bound is reached (chat answers 503)",
                          registry=r),
        ledger_shipped=Counter(p + "ledger_segments_shipped", "Sealed ledger segments confirmed by the store "
                               "(already_stored: a retried upload found its own earlier copy)", ["result"], registry=r),
        ledger_ship_failures=Counter(p + "ledger_ship_failures", "Failed ledger segment uploads (retried)",
                                     registry=r),
    )


async def watch_loop_lag(hist: Histogram, period_s: float = 0.1) -> None:
    """Sleeps ``period_s`` over and over and observes how late each wake-up is (10 wake-ups a second;
    uvloop's timers have 1 ms resolution, so lags below ~1 ms are noise)."""
    obs = hist.observe
    while True:
        t = time.perf_counter()
        await asyncio.sleep(period_s)
        obs(max(0.0, time.perf_counter() - t - period_s))


class GcWatch:
    """Times every garbage-collector pass into ``gc_pause_seconds`` and, at start-up, freezes what exists.

    A GC pass stops the event loop for its whole duration. Measured in the router under load
    (bench/router_overhead.py, README config with a Bedrock client): the one full (generation-2) pass
    took 12–20 ms over ~98k start-up objects — config, pydantic schemas, boto3/botocore models, Starlette.
    ``gc.freeze()`` after start-up moves those objects to the permanent generation, so later full passes
    scan only what was allocated since (the CPython docs' recipe for long-lived servers). ``stop`` undoes
    both (tests create many apps in one process)."""

    def __init__(self, hist: Histogram) -> None:
        self._obs = [hist.labels(str(g)).observe for g in range(3)]
        self._t0 = 0.0

    def _cb(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self._obs[info["generation"]](time.perf_counter() - self._t0)

    def start(self, freeze: bool = True) -> None:
        if freeze:
            gc.collect()
            gc.freeze()
        gc.callbacks.append(self._cb)

    def stop(self) -> None:
        if self._cb in gc.callbacks:
            gc.callbacks.remove(self._cb)
        gc.unfreeze()


class JsonLineHandler(logging.Handler):
    """JSON lines to a stream, written by a background thread in batches, never by the caller.

    Why: a ``write()`` to stdout can block — a full pipe to a slow log collector, or a file write held
    in the kernel's dirty-page throttling while other processes write heavily (seen in
    bench/router_overhead.py on this shared machine: the event loop stood still for up to 1 s while
    the direct path and the router's own threads were fine). On the event loop that stalls every
    request in flight. Here the caller only formats and appends to a deque; the writer wakes at most
    once per ``window_s`` (no thread hand-off per line) and writes everything pending in one call.
    Bounded: past ``max_pending`` lines, lines are dropped and counted, and a ``log_lines_dropped``
    line says how many once the writer catches up. ``flush()`` (tests, ``logging.shutdown`` at exit)
    writes what is pending synchronously."""

    def __init__(self, stream: Any, window_s: float = 0.05, max_pending: int = 50_000) -> None:
        super().__init__()
        self.stream = stream
        self.window_s = window_s
        self.max_pending = max_pending
        self._pending: collections.deque[bytes] = collections.deque()
        self._dropped = 0
        self._wake = threading.Event()
        self._write_lock = threading.Lock()  # one drain at a time: lines stay in order
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def setStream(self, stream: Any) -> Any:  # noqa: N802 — logging.StreamHandler's name
        self.flush()
        old, self.stream = self.stream, stream
        return old

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record).encode() + b"\n"
        except Exception:  # noqa: BLE001 — logging must never take the request down
            self.handleError(record)
            return
        if len(self._pending) >= self.max_pending:
            self._dropped += 1
            return
        self._pending.append(line)
        if not self._wake.is_set():
            self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(self.window_s)  # let a batch gather
            self._wake.clear()
            self.flush()

    def flush(self) -> None:
        with self._write_lock:
            lines = []
            while self._pending:
                lines.append(self._pending.popleft())
            if self._dropped:
                n, self._dropped = self._dropped, 0
                rec = logging.LogRecord(LOGGER, logging.WARNING, __file__, 0, "log_lines_dropped", None, None)
                rec.count = n
                lines.append(self.format(rec).encode() + b"\n")
            if not lines:
                return
            data = b"".join(lines)
            try:
                buf = getattr(self.stream, "buffer", None)
                if buf is None:  # a text-only stream (e.g. a test's capture)
                    self.stream.write(data.decode())
                    self.stream.flush()
                else:
                    buf.write(data)
                    buf.flush()
            except Exception:  # noqa: BLE001 — a broken stdout must not kill the writer
                pass

    def close(self) -> None:
        self.flush()
        super().close()


def configure_logging(service: str, level: str) -> logging.Logger:
    """The shared convention (tierwise_logs) on a JsonLineHandler: one writer thread per process,
    however many apps are built. Formatting a line with python-json-logger costs ~12 µs of CPU (the
    hand-written formatter it replaces: ~2.5 µs; measured at load average 7.5-8 on 2 cores), paid on the
    event loop after the response is sent (``event_after``): no latency for that request, but ~12 µs of
    loop time that other requests in flight wait behind. Overhead measured with it:
    ``bench/results/router_overhead/loopback-2core-32conns-final.json`` (router README)."""
    return configure(LOGGER, service, level, handler=lambda: JsonLineHandler(sys.stdout))


def event(log: logging.Logger, msg: str, level: int = logging.INFO, **fields: object) -> None:
    if log.isEnabledFor(level):
        log.log(level, msg, extra=fields)


def event_after(log: logging.Logger, msg: str, level: int = logging.INFO, span: Any = None,
                **fields: object) -> None:
    """``event``, emitted by the event loop once the current callback is done: the per-request line is
    built and written *after* the response it describes went to the socket (uvicorn writes a
    non-streaming response within the same callback), so it costs CPU but no latency. Measured with
    a file as the log stream: ~40 µs per line (LogRecord ~20, JSON ~10, write ~10) on every request's path.
    Outside a running loop it is ``event``.

    ``span``: the OTel span the line belongs to when it is not the current one (the chat span is
    started detached, tracing.py); the line is formatted with it current, so it carries its
    ``trace_id``/``span_id`` like every line logged inside a span."""
    if not log.isEnabledFor(level):
        return
    ctx = contextvars.copy_context()
    if span is not None:
        ctx.run(otel_context.attach, otel_trace.set_span_in_context(span))
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        ctx.run(log.log, level, msg, extra=fields)
        return
    loop.call_soon(functools.partial(log.log, level, msg, extra=fields), context=ctx)
