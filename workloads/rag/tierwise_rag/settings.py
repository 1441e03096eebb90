"""Service settings: env prefix ``TIERWISE_RAG_``; nested values as JSON (e.g. ``TIERWISE_RAG_TEAMS``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .access import TeamGrant

_PLACEHOLDERS = {"", "changeme", "change-me", "secret", "dev", "test", "password"}


class Team(TeamGrant):
    api_key: SecretStr = Field(description="bearer token that identifies this team")


class S3Source(BaseModel):
    """An S3 prefix whose object events (delivered through SQS) feed a fluid collection."""

    model_config = ConfigDict(extra="forbid")
    bucket: str
    prefix: str = ""
    collection: str
    team: str = Field(description="the team whose grants the ingestion runs under (needs write)")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIERWISE_RAG_", env_nested_delimiter="__", extra="forbid")

    env: Literal["dev", "staging", "prod"] = "dev"
    service_name: str = "tierwise-rag"
    # storage: local mode (path or in-memory) unless a URL is given
    qdrant_url: str | None = Field(None, description="Qdrant server URL, e.g. http://qdrant.rag.svc:6333; unset = local mode")
    qdrant_api_key: SecretStr | None = None
    qdrant_path: Path | None = Field(None, description="local-mode directory; unset with no URL = in-memory")
    qdrant_timeout_seconds: float = 10.0
    qdrant_prefix: str = Field("tw", pattern=r"^[a-z0-9]{1,16}$")
    # embedding and chunking
    embedder: Literal["minilm", "hashing"] = "minilm"
    embed_backend: Literal["onnx", "torch"] = Field(
        "onnx", description="onnx: onnxruntime over a graph exported once from the packaged weights; torch: sentence-transformers"
    )
    onnx_cache_dir: Path | None = Field(None, description="where the exported ONNX graph is kept; unset = $XDG_CACHE_HOME/tierwise-rag/onnx")
    embed_threads: int = Field(1, ge=1, le=64, description="intra-op threads; 1 keeps query latency steady on a busy node")
    embed_quantized: bool = Field(False, description="onnx only: dynamic int8 graph (~2x less CPU; vectors differ, so its own version ids)")
    embed_batch_threads: int = Field(2, ge=1, le=64, description="onnx: texts an ingestion call embeds at once, each on one thread")
    chunk_max_tokens: int = Field(200, ge=16, le=256)
    chunk_overlap_tokens: int = Field(32, ge=0)
    max_document_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    max_chunks_per_document: int = Field(2000, ge=1)
    max_batch_documents: int = Field(256, ge=1, description="per request; larger anchored versions are built by staging")
    staging_ttl_seconds: float = Field(3600.0, gt=0, le=7 * 86400, description="an abandoned staging version expires this long after its last write")
    staging_sweep_seconds: float = Field(60.0, gt=0, description="how often the service drops expired staging versions")
    # retrieval
    bm25_stopwords: Literal["en_plus", "en", "none"] = Field("en_plus", description="en_plus: NLTK's 179 English stop words; en: Lucene's 33")
    bm25_stem: bool = True
    # BM25, fusion (FusionConfig) and reranker defaults: the cross-corpus choice of bench/rag.py
    # (bench/results/rag/cpu-2core-loco.json, "defaults_all_corpora"; README "Evaluation").
    bm25_k1: float = Field(1.5, gt=0.0, le=10.0)
    bm25_b: float = Field(0.75, ge=0.0, le=1.0)
    # Cross-encoder: off by default (bench/results/rag/cpu-2core-cross-encoder.json; README "Reranker").
    # No reachable package ships cross-encoder weights; the one bench/rag_cross_encoder.py trains from
    # the packaged MiniLM (3 layers, int8; each held-out corpus reranked by a model trained without it)
    # ranked *below* hybrid everywhere — nDCG@10 at N=20 vs hybrid: debian-faq 0.603 vs 0.745,
    # python-faq 0.596 vs 0.881, git-sqlite-faq 0.813 vs 0.964 (N=50 lower still); mixed 50/50 with
    # the fused score it stayed just below hybrid (0.742 / 0.870 / 0.958) — while costing 210-300 ms of
    # thread CPU per query at N=20 (390-570 ms at N=50) against 7-9 ms for hybrid.
    rerank_model_dir: Path | None = Field(
        None, description="ONNX cross-encoder (model.onnx + tokenizer.json) for rerank=true; unset = the score-level convex combination")
    rerank_alpha: float = Field(0.8, ge=0.0, le=1.0)
    rerank_depth: int = Field(50, ge=1, le=200)
    # access
    teams: dict[str, Team] = Field(default_factory=dict)
    # fluid sources
    watch_dir: Path | None = Field(None, description="local folder mirrored into watch_collection")
    watch_collection: str | None = None
    watch_team: str | None = None
    sqs_queue_url: str | None = None
    sqs_region: str | None = None
    s3_sources: list[S3Source] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.env != "dev":
            for name, team in self.teams.items():
                key = team.api_key.get_secret_value()
                if key.lower() in _PLACEHOLDERS or len(key) < 16:
                    raise ValueError(f"team {name!r} has a placeholder or short api_key (min 16 chars outside env=dev)")
            if self.embedder != "minilm":
                raise ValueError("embedder 'hashing' is for dev and tests only")
        if self.embed_quantized and self.embed_backend != "onnx":
            raise ValueError("embed_quantized needs embed_backend=onnx (the torch backend has no int8 graph)")
        keys = [t.api_key.get_secret_value() for t in self.teams.values()]
        if len(keys) != len(set(keys)):
            raise ValueError("two teams share an api_key")
        if self.watch_dir and not (self.watch_collection and self.watch_team):
            raise ValueError("watch_dir needs watch_collection and watch_team")
        if self.chunk_overlap_tokens * 2 >= self.chunk_max_tokens:
            raise ValueError("chunk_overlap_tokens must be less than half of chunk_max_tokens")
        return self
