"""tierwise's one log-line convention (docs/logging.md), shared by every service.

A line is one JSON object, written to stdout, with these keys first:

    ts       RFC 3339 UTC with milliseconds: "2026-12-03T06:19:46.123Z"
    level    debug | info | warning | error | critical
    service  the service's name ("router", "rag", ...), from its settings
    logger   the stdlib logger's name ("tierwise.rag.api", ...)
    event    what happened, a short snake_case name ("chat", "request", "step_done", ...)

then the call's structured fields (``log.info("chat", extra={"team": ..., "status": ...})``),
``exc_info`` when an exception is logged, and ``trace_id``/``span_id`` (hex, as OTel writes them)
when an OpenTelemetry span is current.

python-json-logger does the formatting (it turns a ``logging.LogRecord`` and its ``extra`` fields
into JSON with orjson); this module only configures it. It is stdlib ``logging`` all the way down,
so a service's own handler (the router's non-blocking writer) and any library's log records take the
same shape.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any, Callable

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

try:
    from opentelemetry import trace as _otel_trace
except ImportError:  # a service without OpenTelemetry: its lines carry no trace ids
    _otel_trace = None

KEYS = ("ts", "level", "service", "logger", "event")
LEVELS = ("debug", "info", "warning", "error", "critical")
TS_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
# LogRecord attribute -> key (asctime is formatted by LineFormatter's time settings below)
_RENAME = {"asctime": "ts", "levelname": "level", "name": "logger", "message": "event"}
# record attributes that are not structured fields: the stdlib's, and uvicorn's coloured copy of the message
_NOT_FIELDS = [*RESERVED_ATTRS, "taskName", "color_message"]


class LineFormatter(OrjsonFormatter):
    """python-json-logger's orjson formatter with the convention's keys, UTC millisecond timestamps
    (``logging.Formatter``'s own time settings), lower-case levels and OTel trace ids."""

    converter = time.gmtime
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"

    def __init__(self, service: str) -> None:
        if not isinstance(service, str) or not service.strip():
            raise ValueError(f"tierwise_logs: service must be the service's name (e.g. 'router'), got {service!r}")
        super().__init__(list(_RENAME), rename_fields=_RENAME, static_fields={"service": service},
                         reserved_attrs=_NOT_FIELDS)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        log_data["level"] = str(log_data["level"]).lower()
        if _otel_trace is not None:
            ctx = _otel_trace.get_current_span().get_span_context()
            if ctx.is_valid:
                log_data["trace_id"] = format(ctx.trace_id, "032x")
                log_data["span_id"] = format(ctx.span_id, "016x")
        return log_data


class StdoutHandler(logging.StreamHandler):
    """A ``StreamHandler`` on whatever ``sys.stdout`` is when a record is written, as the stdlib's
    last-resort handler does for stderr: test runners swap ``sys.stdout``, and a handler that kept an
    old one would write to a closed file."""

    def __init__(self, level: int = logging.NOTSET) -> None:
        logging.Handler.__init__(self, level)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stdout


def configure(logger: str, service: str, level: str | int = "INFO", *,
              handler: Callable[[], logging.Handler] | None = None) -> logging.Logger:
    """Gives the logger tree ``logger`` one convention handler writing to stdout and returns the logger.

    Idempotent, for app factories that tests call many times in one process: the handler made on the
    first call (``handler()``, default a ``StdoutHandler``) is kept, a handler with its own stream is
    pointed at the *current* ``sys.stdout`` (pytest swaps it per test), and it gets a fresh formatter
    for ``service``. The tree does not propagate to the root logger, which stays the application's."""
    log = logging.getLogger(logger)
    log.setLevel(level)
    log.propagate = False
    h = next((h for h in log.handlers if getattr(h, "_tierwise_logs", False)), None)
    if h is None:
        h = handler() if handler is not None else StdoutHandler()
        h._tierwise_logs = True  # type: ignore[attr-defined]
        log.addHandler(h)
    elif not isinstance(h, StdoutHandler) and hasattr(h, "setStream"):
        h.setStream(sys.stdout)
    h.setFormatter(LineFormatter(service))
    return log


def check_line(line: str | bytes) -> dict[str, Any]:
    """Parses one log line and checks it follows the convention; returns the object. For tests and
    log pipelines: raises ``ValueError`` saying which rule the line breaks."""
    text = line.decode() if isinstance(line, bytes) else line
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise ValueError(f"not a JSON log line ({e}): {text[:200]!r}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"a log line must be one JSON object, got {type(obj).__name__}: {text[:200]!r}")
    missing = [k for k in KEYS if k not in obj]
    if missing:
        raise ValueError(f"log line lacks {missing} (every line has {list(KEYS)}): {text[:200]!r}")
    if not isinstance(obj["ts"], str) or not TS_PATTERN.fullmatch(obj["ts"]):
        raise ValueError(f"ts must be RFC 3339 UTC with milliseconds like 2026-12-03T06:19:46.123Z, got {obj['ts']!r}")
    if obj["level"] not in LEVELS:
        raise ValueError(f"level must be one of {list(LEVELS)}, got {obj['level']!r}")
    for k in ("service", "logger", "event"):
        if not isinstance(obj[k], str) or not obj[k]:
            raise ValueError(f"{k} must be a non-empty string, got {obj[k]!r}")
    return obj


def check_lines(text: str | bytes) -> list[dict[str, Any]]:
    """``check_line`` for every non-blank line of ``text`` (one record per line)."""
    if isinstance(text, bytes):
        text = text.decode()
    return [check_line(ln) for ln in text.splitlines() if ln.strip()]
