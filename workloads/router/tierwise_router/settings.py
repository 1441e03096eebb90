"""Process settings (env prefix TIERWISE_ROUTER_). The routing config itself is a file (config.py)."""

from __future__ import annotations

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
    scrape_interval_s: float = Field(default=2.0, gt=0, description="vLLM /metrics scrape period")
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    log_level: str = "INFO"
    otel_endpoint: HttpUrl | None = None
    rag_api_key: SecretStr | None = Field(default=None, description="bearer key the router presents to the RAG "
                                          "service (its team decides which collections may be read)")
    service_name: str = "tierwise-router"

    def model_post_init(self, _ctx: object) -> None:
        if self.budget_backend == "redis" and self.redis_url is None:
            raise ValueError("budget_backend=redis needs TIERWISE_ROUTER_REDIS_URL")
        if self.env in ("staging", "prod") and self.ledger_path is None:
            raise ValueError("a ledger_path is required outside dev/test: spend must be auditable")
