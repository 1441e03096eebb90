"""The router's log lines follow the shared convention (docs/logging.md, tierwise_logs): one JSON object
per line with ts/level/service/logger/event, and the chat span's trace ids when tracing is on.

The router is the service with OpenTelemetry, so the convention library's own rules (timestamp, level,
trace ids, the line checker's verdicts) are tested here too."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import sys

import pytest
from conftest import KEY_A, make_config
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tierwise_logs import KEYS, LineFormatter, check_line, check_lines

from tierwise_router.observability import LOGGER
from tierwise_router.settings import Settings


def _handler() -> logging.Handler:
    return next(h for h in logging.getLogger(LOGGER).handlers if getattr(h, "_tierwise_logs", False))


async def test_every_router_line_has_the_shared_keys_and_the_chat_line_its_trace(tmp_path, fake_vllm, client_for):
    _, url = fake_vllm
    exp = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exp))
    s = Settings(env="test", ledger_path=tmp_path / "l.jsonl", scrape_interval_s=5)
    raw = io.BytesIO()
    try:
        app_ctx = client_for(s, make_config([url]), tracer_provider=tp)
        h = _handler()
        h.setStream(io.TextIOWrapper(raw, encoding="utf-8", write_through=True))
        async with app_ctx as c:
            r = await c.post("/v1/chat/completions", headers={"authorization": f"Bearer {KEY_A}",
                                                              "x-request-id": "rid-conv-1"},
                             json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code == 200
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        h.flush()
    finally:
        tp.shutdown()
    lines = check_lines(raw.getvalue())  # raises on any line that breaks the convention
    by_event = {ln["event"]: ln for ln in lines}
    assert {"startup", "chat", "shutdown"} <= set(by_event)
    assert {ln["service"] for ln in lines} == {s.service_name}
    assert {ln["logger"] for ln in lines} == {LOGGER}
    chat = by_event["chat"]
    assert chat["request_id"] == "rid-conv-1" and chat["status"] == 200 and chat["level"] == "info"
    (span,) = [sp for sp in exp.get_finished_spans() if sp.name.startswith("chat")]
    assert chat["trace_id"] == format(span.context.trace_id, "032x")
    assert chat["span_id"] == format(span.context.span_id, "016x")
    assert "trace_id" not in by_event["startup"]  # no span current at start-up: no ids


def _record(msg: str = "ev", level: int = logging.INFO, created: float | None = None, **extra: object):
    rec = logging.LogRecord("tierwise.test", level, __file__, 1, msg, None, None)
    if created is not None:
        rec.created, rec.msecs = created, (created - int(created)) * 1000
    rec.__dict__.update(extra)
    return rec


def test_formatter_writes_utc_milliseconds_lower_case_levels_and_fields():
    f = LineFormatter("svc")
    line = f.format(_record("budget_settle_failed", logging.ERROR, created=1_767_000_000.0429, team="a", n=3))
    obj = check_line(line)
    assert list(obj)[:5] == ["ts", "level", "logger", "event", "service"] and set(KEYS) <= set(obj)
    assert obj["ts"] == "2025-12-29T09:20:00.042Z"  # 1_767_000_000 s, UTC, milliseconds
    assert (obj["level"], obj["service"], obj["logger"], obj["team"], obj["n"]) == ("error", "svc", "tierwise.test", "a", 3)
    assert "\n" not in line


def test_formatter_keeps_the_traceback_on_one_line_and_adds_ids_inside_a_span():
    f = LineFormatter("svc")
    try:
        raise ValueError("bad")
    except ValueError:
        rec = _record("failed", logging.ERROR, exc_info=None)
        rec.exc_info = sys.exc_info()
    line = f.format(rec)
    assert "\n" not in line and "ValueError: bad" in check_line(line)["exc_info"]
    tp = TracerProvider()
    with tp.get_tracer("t").start_as_current_span("op") as sp:
        inside = check_line(f.format(_record()))
    assert inside["trace_id"] == format(sp.get_span_context().trace_id, "032x")
    assert "trace_id" not in check_line(f.format(_record()))
    assert trace.get_current_span().get_span_context().is_valid is False


@pytest.mark.parametrize("line, why", [
    ('{"ts": 1767000000.042, "level": "info", "service": "s", "logger": "l", "event": "e"}', "ts must be RFC 3339"),
    ('{"ts": "2026-12-03T06:19:46Z", "level": "info", "service": "s", "logger": "l", "event": "e"}', "milliseconds"),
    ('{"ts": "2026-12-03T06:19:46.123Z", "level": "INFO", "service": "s", "logger": "l", "event": "e"}', "level"),
    ('{"ts": "2026-12-03T06:19:46.123Z", "level": "info", "service": "s", "logger": "l", "msg": "e"}', "lacks ['event']"),
    ('{"ts": "2026-12-03T06:19:46.123Z", "level": "info", "service": "", "logger": "l", "event": "e"}', "service must"),
    ('INFO request done', "not a JSON log line"),
    ('["a"]', "one JSON object"),
])
def test_check_line_names_the_broken_rule(line: str, why: str):
    with pytest.raises(ValueError, match=re.escape(why)):
        check_line(line)


def test_formatter_refuses_a_missing_service_name():
    with pytest.raises(ValueError, match="service must be the service's name"):
        LineFormatter("")
