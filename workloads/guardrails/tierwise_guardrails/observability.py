"""JSON logs (the shared convention, tierwise_logs) and a per-app Prometheus registry (created in the
factory, never at import). Metric names carry the `tierwise_guardrails_` prefix like every service's."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Histogram
from tierwise_logs import configure

LOGGER = "tierwise.guardrails"


def make_logger(service: str) -> logging.Logger:
    """The ``tierwise.guardrails`` logger tree in the shared line convention (docs/logging.md, tierwise_logs)."""
    return configure(LOGGER, service, logging.INFO)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("tierwise_guardrails_requests_total", "HTTP requests", ["route", "status"], registry=self.registry)
        self.decisions = Counter("tierwise_guardrails_decisions_total", "Check decisions", ["direction", "decision"], registry=self.registry)
        self.findings = Counter("tierwise_guardrails_findings_total", "Findings by entity type", ["direction", "type"], registry=self.registry)
        self.latency = Histogram(
            "tierwise_guardrails_check_latency_seconds", "Check latency by stage", ["stage"], registry=self.registry,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
        )
