"""The knowledge base's data model: errors, registry entries (collections, versions, staging
versions), ingest results, the immutable per-version :class:`Snapshot` a query reads, and :class:`Hit`
— one pydantic model used both in-process and on the wire (no dataclass/pydantic mirror to keep in
sync)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .lexical import BM25Index

Kind = Literal["anchored", "fluid"]
Mode = Literal["hybrid", "bm25", "dense"]


class NotFound(Exception):
    pass


class Conflict(Exception):
    pass


class InvalidRequest(Exception):
    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class FusionConfig(BaseModel):
    """Per-collection fusion. The defaults are the cross-corpus choice of ``bench/rag.py`` (three FAQ
    corpora; the minimax rule — best worst-corpus ratio of hybrid to the better single retriever; see
    the README): dense-weighted RRF (3:1) with ``k`` = 1, fusing chunk lists. Held out one corpus at a
    time, this rule kept hybrid at or above the better single retriever on every corpus."""

    model_config = ConfigDict(extra="forbid")
    bm25_weight: float = Field(1.0, ge=0.0, le=10.0)
    dense_weight: float = Field(3.0, ge=0.0, le=10.0)
    rrf_k: float = Field(1.0, gt=0.0, le=1000.0)
    candidates: int = Field(50, ge=1, le=1000, description="depth of each retriever's list before fusion")
    aggregate: Literal["none", "max", "sum"] = Field(
        "none",
        description="none: fuse chunk lists; max/sum: first fold each retriever's chunks to documents (document score = max or sum "
        "of its chunk scores), fuse the document lists, then return each document's candidate chunks in document order",
    )


class VersionInfo(BaseModel):
    id: str
    created_at: float
    documents: int
    chunks: int
    embedder: str
    chunking: dict[str, int]
    physical: str | None = Field(None, description="Qdrant collection holding it; None = the default name for (collection, id)")


class StagingInfo(BaseModel):
    """An anchored version being assembled over several requests; invisible to queries until committed."""

    id: str
    created_at: float
    expires_at: float
    physical: str
    embedder: str | None = Field(None, description="the embedder its vectors come from; None = opened before this was recorded")


class CollectionInfo(BaseModel):
    name: str
    kind: Kind
    fusion: FusionConfig = Field(default_factory=FusionConfig)
    max_age_seconds: float | None = None
    created_at: float
    embedder: str | None = Field(
        None, description="fluid only: the embedder its vectors come from; None = anchored, or created before this was recorded"
    )
    active_version: str | None = None
    versions: list[VersionInfo] = Field(default_factory=list)
    history: list[str] = Field(default_factory=list, description="promotion order; rollback pops the last")
    staging: list[StagingInfo] = Field(default_factory=list)


@dataclass(slots=True)
class DocResult:
    id: str
    status: Literal["ingested", "unchanged", "deleted", "not_found", "skipped_stale_event", "error"]
    chunks: int = 0
    error: dict[str, str] | None = None


@dataclass(slots=True)
class IngestReport:
    collection: str
    kind: Kind
    results: list[DocResult]
    version: str | None = None
    promoted: bool = False
    created_version: bool = False

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            out[r.status] = out.get(r.status, 0) + 1
        return out


@dataclass(frozen=True, slots=True)
class Snapshot:
    collection: str
    kind: Kind
    version: str | None
    physical: str
    point_ids: tuple[str, ...]
    payloads: tuple[dict[str, Any], ...]
    bm25: BM25Index


class Hit(BaseModel):
    """One retrieved chunk, in-process and on the wire."""

    collection: str
    version: str | None
    doc_id: str
    chunk_index: int
    text: str
    headings: list[str]
    score: float
    metadata: dict[str, Any]
    ingested_at: float
    source_version: str | None
    stale: bool
    ranks: dict[str, int | None]


@dataclass(slots=True)
class RetrieveResult:
    hits: list[Hit]
    timings_ms: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str | None] = field(default_factory=dict)


@dataclass(slots=True)
class StalenessReport:
    collection: str
    documents: int
    chunks: int
    max_age_seconds: float | None
    stale_documents: int
    oldest_ingested_at: float | None
    newest_ingested_at: float | None
    oldest_age_seconds: float | None
    stale_examples: list[str]
