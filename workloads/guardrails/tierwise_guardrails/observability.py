"""JSON logs and a per-app Prometheus registry (created in the factory, never at import)."""

from __future__ import annotations

import json
import logging
import time

from prometheus_client import CollectorRegistry, Counter, Histogram

_FIELDS = ("request_id", "route", "status", "latency_ms", "team", "direction", "decision", "ticket_id")


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": round(time.time(), 3), "level": record.levelname.lower(), "service": self.service, "msg": record.getMessage()}
        for k in _FIELDS + ("unknown_fields",):
            if hasattr(record, k):
                out[k] = getattr(record, k)
        return json.dumps(out)


def make_logger(service: str) -> logging.Logger:
    logger = logging.getLogger(f"tierwise.{service}")
    logger.propagate = False
    if not any(getattr(h, "_tierwise", False) for h in logger.handlers):
        h = logging.StreamHandler()
        h._tierwise = True  # type: ignore[attr-defined]
        h.setFormatter(JsonFormatter(service))
        logger.addHandler(h)
    logger.setLevel(logging.INFO)
    return logger


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("guardrails_requests_total", "HTTP requests", ["route", "status"], registry=self.registry)
        self.decisions = Counter("guardrails_decisions_total", "Check decisions", ["direction", "decision"], registry=self.registry)
        self.findings = Counter("guardrails_findings_total", "Findings by entity type", ["direction", "type"], registry=self.registry)
        self.latency = Histogram(
            "guardrails_check_latency_seconds", "Check latency by stage", ["stage"], registry=self.registry,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
        )
