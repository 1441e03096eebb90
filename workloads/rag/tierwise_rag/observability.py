"""JSON logs (the shared convention, tierwise_logs) and Prometheus metrics, both set up per app (no module-level collectors)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from tierwise_logs import configure

_LAT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


def configure_logging(service: str, level: str = "INFO") -> None:
    """The ``tierwise.rag`` logger tree in the shared line convention (docs/logging.md, tierwise_logs);
    idempotent, leaves the root logger alone."""
    configure("tierwise.rag", service, level)


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
