"""JSON logs and Prometheus metrics, both created per app (no module-level collectors)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LAT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class JsonFormatter(logging.Formatter):
    FIELDS = ("service", "request_id", "route", "status", "latency_ms", "collection", "team", "bucket", "event", "counts")

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage(),
        }
        for f in self.FIELDS:
            if hasattr(record, f):
                out[f] = getattr(record, f)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Configures the ``tierwise.rag`` logger tree only (idempotent; leaves the root logger alone)."""
    logger = logging.getLogger("tierwise.rag")
    logger.setLevel(level)
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.propagate = False


@dataclass
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    stage_latency: Histogram
    documents: Counter
    fluid_oldest_age: Gauge


def create_metrics() -> Metrics:
    r = CollectorRegistry()
    return Metrics(
        registry=r,
        requests=Counter("tierwise_rag_requests", "HTTP requests", ["route", "status"], registry=r),
        latency=Histogram("tierwise_rag_request_seconds", "HTTP request latency", ["route"], buckets=_LAT_BUCKETS, registry=r),
        stage_latency=Histogram("tierwise_rag_retrieve_stage_seconds", "retrieval stage latency", ["stage"], buckets=_LAT_BUCKETS, registry=r),
        documents=Counter("tierwise_rag_documents", "documents processed by ingestion", ["kind", "status"], registry=r),
        fluid_oldest_age=Gauge("tierwise_rag_fluid_oldest_age_seconds", "age of the oldest document in a fluid collection", ["collection"], registry=r),
    )
