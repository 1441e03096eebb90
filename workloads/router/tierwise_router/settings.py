"""Process settings (env prefix TIERWISE_ROUTER_). The routing config itself is a file (config.py)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, HttpUrl, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIERWISE_ROUTER_", extra="forbid")

    env: Literal["dev", "test", "staging", "prod"] = "dev"
    config_path: Path = Path("/etc/tierwise/router.yaml")
    budget_backend: Literal["memory", "redis"] = "memory"
    redis_url: SecretStr | None = None
    ledger_path: Path | None = Field(default=None, description="append-only token-cost ledger (JSON lines)")
    ledger_fsync: Literal["always", "batch"] = "batch"
    ledger_batch_window_ms: float = Field(default=10.0, ge=0, le=1000,
                                          description="batch mode: group-commit window (the most a crash can lose)")
    # Durable sink (tierwise_router/shipper.py): sealed local segments go to S3 and are deleted locally
    # only once S3 confirmed them. Without a bucket the ledger stays local (dev/test only).
    ledger_s3_bucket: str | None = None
    ledger_s3_prefix: str = Field(default="ledger/router", pattern=r"^[A-Za-z0-9._/-]*$",
                                  description="key prefix; the router's role may PutObject under it only")
    ledger_s3_region: str | None = None
    ledger_s3_endpoint_url: HttpUrl | None = Field(default=None, description="S3-compatible endpoint (tests: moto)")
    ledger_ack: Literal["local", "durable"] = Field(
        default="local", description="when an entry is settled: at its local fsync, or once S3 confirmed it "
        "(the response waits for that; survives losing the volume)")
    ledger_ack_timeout_s: float = Field(default=5.0, gt=0, le=60)
    ledger_ship_min_interval_ms: float = Field(default=100.0, ge=0, le=60_000,
                                               description="durable acks: at most one PUT per interval (S3 cost)")
    ledger_replica_id: str = Field(default_factory=socket.gethostname, min_length=1,
                                   description="names this replica's segments (the pod name)")
    ledger_segment_max_bytes: int = Field(default=32 << 20, ge=64 << 10, le=1 << 30)
    ledger_segment_max_age_s: float = Field(default=60.0, gt=0, le=3600)
    ledger_local_max_bytes: int = Field(default=512 << 20, ge=1 << 20,
                                        description="local backlog bound: at it, chat answers 503 and /readyz fails")
    scrape_interval_s: float = Field(default=2.0, gt=0, description="vLLM /metrics scrape period")
    gc_freeze: bool = Field(default=True, description="gc.freeze() after start-up: full GC passes then skip "
                            "start-up objects (observability.GcWatch)")
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    log_level: str = "INFO"
    otel_endpoint: HttpUrl | None = None
    rag_api_key: SecretStr | None = Field(default=None, description="bearer key the router presents to the RAG "
                                          "service (its team decides which collections may be read)")
    service_name: str = "tierwise-router"
    triage_artifact: Path | None = Field(default=None, description="triage model file (v1 or v2 format); unset = "
                                         "the packaged v2 (triage_v2.json)")

    def model_post_init(self, _ctx: object) -> None:
        if self.budget_backend == "redis" and self.redis_url is None:
            raise ValueError("budget_backend=redis needs TIERWISE_ROUTER_REDIS_URL")
        if self.env in ("staging", "prod") and self.ledger_path is None:
            raise ValueError("a ledger_path is required outside dev/test: spend must be auditable")
        if self.env in ("staging", "prod") and self.ledger_s3_bucket is None:
            raise ValueError("TIERWISE_ROUTER_LEDGER_S3_BUCKET is required outside dev/test: a local ledger is "
                             "lost with the pod")
        if self.ledger_ack == "durable" and (self.ledger_s3_bucket is None or self.ledger_path is None):
            raise ValueError("ledger_ack=durable needs TIERWISE_ROUTER_LEDGER_PATH and TIERWISE_ROUTER_LEDGER_S3_BUCKET")
        if self.ledger_segment_max_bytes >= self.ledger_local_max_bytes:
            raise ValueError(f"ledger_segment_max_bytes ({self.ledger_segment_max_bytes}) must be below "
                             f"ledger_local_max_bytes ({self.ledger_local_max_bytes})")
