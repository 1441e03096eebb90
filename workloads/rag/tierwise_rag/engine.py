"""The knowledge base: ingestion, anchored versions, fluid updates and hybrid retrieval.

Usable in-process (this is "the library") and wrapped by the HTTP API. Every public method takes
the caller's team and checks it against the :class:`AccessPolicy` before touching anything.

Consistency model
-----------------
A query reads one immutable :class:`Snapshot` per collection, taken with a single reference read at
the start of the query. For an anchored collection the snapshot pins one version: its BM25 index
and the physical Qdrant collection of that version, which is never written after it is built. A
promote or rollback swaps the reference in one assignment (after the new snapshot is fully loaded)
and moves the Qdrant alias in one atomic alias update, so a query sees the old version or the new
one, never a mix. Fluid collections are mutable: a document's chunks are upserted before its
left-over chunks are deleted, so a document never disappears during an update, and the BM25
snapshot is rebuilt after every write batch (read-your-writes for the writer).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from qdrant_client import models

from .access import AccessDenied, AccessPolicy, Action
from .chunking import Chunk, ChunkingConfig, chunk_document
from .documents import Document, DocumentError, RawDocument, validate
from .embedding import Embedder
from .fusion import rrf
from .lexical import BM25Index, LexicalConfig
from .rerank import Candidate, Reranker
from .store import Store, point_id

Kind = Literal["anchored", "fluid"]
Mode = Literal["hybrid", "bm25", "dense"]
_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]|_(?!_)){0,62}$")
_FILTER_KEY_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class NotFound(Exception):
    pass


class Conflict(Exception):
    pass


class InvalidRequest(Exception):
    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class FusionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bm25_weight: float = Field(1.0, ge=0.0, le=10.0)
    dense_weight: float = Field(1.0, ge=0.0, le=10.0)
    rrf_k: float = Field(60.0, gt=0.0, le=1000.0)
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


class CollectionInfo(BaseModel):
    name: str
    kind: Kind
    fusion: FusionConfig = Field(default_factory=FusionConfig)
    max_age_seconds: float | None = None
    created_at: float
    active_version: str | None = None
    versions: list[VersionInfo] = Field(default_factory=list)
    history: list[str] = Field(default_factory=list, description="promotion order; rollback pops the last")


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


@dataclass(slots=True)
class Hit:
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


@dataclass(slots=True)
class _Prepared:
    doc: Document
    chunks: list[Chunk]


class KnowledgeBase:
    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        access: AccessPolicy,
        *,
        chunking: ChunkingConfig | None = None,
        max_document_bytes: int = 2 * 1024 * 1024,
        max_chunks_per_document: int = 2000,
        reranker: Reranker | None = None,
        rerank_depth: int = 30,
        lexical: LexicalConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.access = access
        self.chunking = chunking or ChunkingConfig()
        self.max_document_bytes = max_document_bytes
        self.max_chunks_per_document = max_chunks_per_document
        self.reranker = reranker
        self.rerank_depth = rerank_depth
        self.lexical = lexical or LexicalConfig()
        self.clock = clock
        self._entries: dict[str, CollectionInfo] = {}
        self._active: dict[str, Snapshot] = {}  # the one reference a query reads
        self._versions: dict[tuple[str, str], Snapshot] = {}  # loaded anchored versions
        self._fluid: dict[str, dict[str, dict[str, Any]]] = {}  # name -> point id -> payload
        self._locks: dict[str, threading.Lock] = {}
        self._registry_lock = threading.Lock()

    # ================================================================================== lifecycle
    def open(self) -> None:
        """Load the registry and the active snapshots; drop physical collections a crash orphaned."""
        self.store.ensure_meta()
        for raw in self.store.load_registry():
            info = CollectionInfo.model_validate(raw)
            self._entries[info.name] = info
            self._locks[info.name] = threading.Lock()
            if info.kind == "fluid":
                self._load_fluid(info)
            elif info.active_version:
                self._active[info.name] = self._version_snapshot(info.name, info.active_version)
        known = {self.store.meta}
        for info in self._entries.values():
            if info.kind == "fluid":
                known.add(self.store.fluid_collection(info.name))
            known.update(self.store.version_collection(info.name, v.id) for v in info.versions)
        for physical in self.store.physical_collections():
            if physical not in known:
                self.store.drop_physical(physical)

    def _load_fluid(self, info: CollectionInfo) -> None:
        physical = self.store.fluid_collection(info.name)
        self.store.ensure_physical(physical, self.embedder.dim)
        self._fluid[info.name] = dict(self.store.scroll_all(physical))
        self._rebuild_fluid(info.name)

    # ================================================================================== helpers
    def _require(self, team: str, name: str, action: Action) -> CollectionInfo:
        self.access.require(team, name, action)
        info = self._entries.get(name)
        if info is None:
            raise NotFound(f"collection {name!r} does not exist")
        return info

    def _embed_text(self, chunk: Chunk) -> str:
        return chunk.embed_text

    def _prepare(self, raw: RawDocument) -> _Prepared:
        doc = validate(raw, max_bytes=self.max_document_bytes)
        chunks = chunk_document(doc.text, doc.content_type, self.chunking, self.embedder.count_tokens)
        if not chunks:
            raise DocumentError("empty_document", f"no text could be extracted from this {doc.content_type} document")
        if len(chunks) > self.max_chunks_per_document:
            raise DocumentError(
                "document_too_large",
                f"document yields {len(chunks)} chunks; the limit is {self.max_chunks_per_document}: split it",
            )
        return _Prepared(doc, chunks)

    def _prepare_batch(self, docs: Sequence[RawDocument]) -> tuple[list[_Prepared], dict[int, DocResult]]:
        prepared: list[_Prepared] = []
        errors: dict[int, DocResult] = {}
        seen: set[str] = set()
        for i, raw in enumerate(docs):
            if raw.id in seen:
                errors[i] = DocResult(raw.id, "error", error={"code": "duplicate_document_id", "message": "this id appears earlier in the batch"})
                continue
            seen.add(raw.id)
            try:
                prepared.append(self._prepare(raw))
            except DocumentError as exc:
                errors[i] = DocResult(raw.id, "error", error=exc.as_dict())
        return prepared, errors

    def _payload(self, name: str, prep: _Prepared, chunk: Chunk, now: float, sequencer: str | None) -> dict[str, Any]:
        return {
            "collection": name,
            "doc_id": prep.doc.id,
            "chunk_index": chunk.index,
            "text": chunk.text,
            "headings": list(chunk.headings),
            "content_hash": prep.doc.content_hash,
            "content_type": prep.doc.content_type,
            "metadata": prep.doc.metadata,
            "ingested_at": now,
            "source_version": prep.doc.source_version,
            "sequencer": sequencer,
        }

    def _embed_chunks(self, preps: list[_Prepared]) -> list[np.ndarray]:
        texts = [self._embed_text(c) for p in preps for c in p.chunks]
        vectors = self.embedder.embed(texts)
        out: list[np.ndarray] = []
        pos = 0
        for p in preps:
            out.append(vectors[pos : pos + len(p.chunks)])
            pos += len(p.chunks)
        return out

    def _snapshot(self, name: str, kind: Kind, version: str | None, physical: str, items: list[tuple[str, dict[str, Any]]]) -> Snapshot:
        items = sorted(items, key=lambda kv: (kv[1]["doc_id"], kv[1]["chunk_index"]))
        texts = [_lexical_text(p) for _, p in items]
        return Snapshot(name, kind, version, physical, tuple(k for k, _ in items), tuple(p for _, p in items), BM25Index(texts, self.lexical))

    def _version_snapshot(self, name: str, version: str) -> Snapshot:
        key = (name, version)
        snap = self._versions.get(key)
        if snap is None:
            physical = self.store.version_collection(name, version)
            snap = self._snapshot(name, "anchored", version, physical, self.store.scroll_all(physical))
            self._versions[key] = snap
        return snap

    def _rebuild_fluid(self, name: str) -> None:
        physical = self.store.fluid_collection(name)
        self._active[name] = self._snapshot(name, "fluid", None, physical, list(self._fluid[name].items()))

    # ================================================================================== admin
    def create_collection(
        self, team: str, name: str, kind: Kind, *, fusion: FusionConfig | None = None, max_age_seconds: float | None = None
    ) -> CollectionInfo:
        if not _NAME_RE.match(name):
            raise InvalidRequest("collection name must be 1-63 chars of a-z, 0-9, '-' and single '_', starting alphanumeric", "name")
        self.access.require(team, name, "admin")
        if kind == "anchored" and max_age_seconds is not None:
            raise InvalidRequest("max_age_seconds applies to fluid collections only", "max_age_seconds")
        with self._registry_lock:
            if name in self._entries:
                raise Conflict(f"collection {name!r} already exists")
            info = CollectionInfo(name=name, kind=kind, fusion=fusion or FusionConfig(), max_age_seconds=max_age_seconds, created_at=self.clock())
            if kind == "fluid":
                physical = self.store.fluid_collection(name)
                self.store.create_physical(physical, self.embedder.dim)
                self.store.point_alias(name, physical)
                self._fluid[name] = {}
                self._rebuild_fluid(name)
            self.store.save_entry(info.model_dump())
            self._locks[name] = threading.Lock()
            self._entries[name] = info
        return info

    def update_collection(self, team: str, name: str, *, fusion: FusionConfig | None = None, max_age_seconds: float | None = None) -> CollectionInfo:
        info = self._require(team, name, "admin")
        with self._locks[name]:
            changes: dict[str, Any] = {}
            if fusion is not None:
                changes["fusion"] = fusion
            if max_age_seconds is not None:
                if info.kind != "fluid":
                    raise InvalidRequest("max_age_seconds applies to fluid collections only", "max_age_seconds")
                changes["max_age_seconds"] = max_age_seconds
            new = info.model_copy(update=changes)
            self.store.save_entry(new.model_dump())
            self._entries[name] = new
        return new

    def drop_collection(self, team: str, name: str) -> None:
        info = self._require(team, name, "admin")
        with self._locks[name]:
            self.store.delete_entry(name)  # unregister first: a crash after this leaves only orphans
            self._entries.pop(name, None)
            self._active.pop(name, None)
            self._fluid.pop(name, None)
            self.store.drop_alias(name)
            physicals = [self.store.fluid_collection(name)] if info.kind == "fluid" else [self.store.version_collection(name, v.id) for v in info.versions]
            for physical in physicals:
                self.store.drop_physical(physical)
            for key in [k for k in self._versions if k[0] == name]:
                del self._versions[key]

    def list_collections(self, team: str) -> list[CollectionInfo]:
        return [info for name, info in sorted(self._entries.items()) if self.access.allows(team, name, "read")]

    def get_collection(self, team: str, name: str) -> CollectionInfo:
        return self._require(team, name, "read")

    def promote(self, team: str, name: str, version: str) -> CollectionInfo:
        info = self._require(team, name, "admin")
        if info.kind != "anchored":
            raise InvalidRequest(f"collection {name!r} is fluid: only anchored collections have versions")
        with self._locks[name]:
            return self._promote_locked(self._entries[name], version, rollback=False)

    def rollback(self, team: str, name: str, to: str | None = None) -> CollectionInfo:
        info = self._require(team, name, "admin")
        if info.kind != "anchored":
            raise InvalidRequest(f"collection {name!r} is fluid: only anchored collections have versions")
        with self._locks[name]:
            info = self._entries[name]
            if to is None:
                if len(info.history) < 2:
                    raise Conflict(f"collection {name!r} has no earlier promoted version to roll back to")
                to = info.history[-2]
            return self._promote_locked(info, to, rollback=True)

    def _promote_locked(self, info: CollectionInfo, version: str, *, rollback: bool) -> CollectionInfo:
        if version not in {v.id for v in info.versions}:
            raise NotFound(f"collection {info.name!r} has no version {version!r}")
        snap = self._version_snapshot(info.name, version)  # fully loaded before anything moves
        history = list(info.history)
        if rollback and len(history) >= 2 and history[-2] == version:
            history.pop()
        elif not history or history[-1] != version:
            history.append(version)
        new = info.model_copy(update={"active_version": version, "history": history[-50:]})
        self.store.save_entry(new.model_dump())  # durable decision first
        self.store.point_alias(info.name, snap.physical)  # atomic alias move for external readers
        self._entries[info.name] = new
        self._active[info.name] = snap  # one reference swap: queries see old or new, never a mix
        # Keep the snapshots of the active and the rollback target; the rest reload on demand.
        keep = {version, *history[-2:]}
        for key in [k for k in self._versions if k[0] == info.name and k[1] not in keep]:
            del self._versions[key]
        return new

    def delete_version(self, team: str, name: str, version: str) -> CollectionInfo:
        info = self._require(team, name, "admin")
        with self._locks[name]:
            info = self._entries[name]
            if version == info.active_version:
                raise Conflict(f"version {version!r} is active; promote another version first")
            if version not in {v.id for v in info.versions}:
                raise NotFound(f"collection {name!r} has no version {version!r}")
            new = info.model_copy(
                update={"versions": [v for v in info.versions if v.id != version], "history": [h for h in info.history if h != version]}
            )
            self.store.save_entry(new.model_dump())
            self._entries[name] = new
            self._versions.pop((name, version), None)
            self.store.drop_physical(self.store.version_collection(name, version))
            return new

    # ================================================================================== ingestion
    def ingest(self, team: str, name: str, docs: Sequence[RawDocument], *, promote: bool = False, sequencers: Sequence[str | None] | None = None) -> IngestReport:
        """Fluid: upsert each document. Anchored: the batch is one full snapshot → a new version
        (idempotent: the same content gives the same version id), promoted if asked."""
        info = self._require(team, name, "write")
        if promote:
            self.access.require(team, name, "admin")
        if not docs:
            raise InvalidRequest("no documents", "documents")
        if info.kind == "fluid":
            if promote:
                raise InvalidRequest("promote applies to anchored collections only", "promote")
            return self._ingest_fluid(info, docs, sequencers)
        return self._ingest_anchored(info, docs, promote)

    def _ingest_anchored(self, info: CollectionInfo, docs: Sequence[RawDocument], promote: bool) -> IngestReport:
        prepared, errors = self._prepare_batch(docs)
        if not prepared:
            return IngestReport(info.name, "anchored", _ordered(docs, errors, {}))
        digest = hashlib.sha256()
        digest.update(f"{self.embedder.name}\x1f{self.chunking.max_tokens}\x1f{self.chunking.overlap_tokens}".encode())
        for p in sorted(prepared, key=lambda p: p.doc.id):
            digest.update(f"\x1e{p.doc.id}\x1f{p.doc.content_hash}".encode())
        version = digest.hexdigest()[:20]
        with self._locks[info.name]:
            info = self._entries[info.name]
            created = version not in {v.id for v in info.versions}
            status = "ingested" if created else "unchanged"
            if created:
                now = self.clock()
                physical = self.store.version_collection(info.name, version)
                self.store.create_physical(physical, self.embedder.dim)
                points: list[models.PointStruct] = []
                items: list[tuple[str, dict[str, Any]]] = []
                for prep, vecs in zip(prepared, self._embed_chunks(prepared), strict=True):
                    for chunk, vec in zip(prep.chunks, vecs, strict=True):
                        pid = point_id(info.name, prep.doc.id, chunk.index)
                        payload = self._payload(info.name, prep, chunk, now, None)
                        points.append(models.PointStruct(id=pid, vector=vec.tolist(), payload=payload))
                        items.append((pid, payload))
                self.store.upsert(physical, points)
                self._versions[(info.name, version)] = self._snapshot(info.name, "anchored", version, physical, items)
                meta = VersionInfo(
                    id=version, created_at=now, documents=len(prepared), chunks=len(points), embedder=self.embedder.name,
                    chunking={"max_tokens": self.chunking.max_tokens, "overlap_tokens": self.chunking.overlap_tokens},
                )
                info = info.model_copy(update={"versions": [*info.versions, meta]})
                self.store.save_entry(info.model_dump())  # the version exists once registered
                self._entries[info.name] = info
            promoted = False
            if promote and info.active_version != version:
                self._promote_locked(info, version, rollback=False)
                promoted = True
        ok = {p.doc.id: DocResult(p.doc.id, status, len(p.chunks)) for p in prepared}
        return IngestReport(info.name, "anchored", _ordered(docs, errors, ok), version=version, promoted=promoted, created_version=created)

    def _ingest_fluid(self, info: CollectionInfo, docs: Sequence[RawDocument], sequencers: Sequence[str | None] | None) -> IngestReport:
        prepared, errors = self._prepare_batch(docs)
        seq_by_id = {d.id: (sequencers[i] if sequencers else None) for i, d in enumerate(docs)}
        name = info.name
        physical = self.store.fluid_collection(name)
        ok: dict[str, DocResult] = {}
        with self._locks[name]:
            records = self._fluid[name]
            current = _docs_view(records)
            now = self.clock()
            to_write: list[_Prepared] = []
            for prep in prepared:
                doc_id = prep.doc.id
                seq = seq_by_id.get(doc_id)
                existing = current.get(doc_id)
                if existing and seq and existing.get("sequencer") and not sequencer_newer(seq, existing["sequencer"]):
                    ok[doc_id] = DocResult(doc_id, "skipped_stale_event", existing["chunks"])
                elif existing and existing["content_hash"] == prep.doc.content_hash:
                    refresh = {"ingested_at": now, "source_version": prep.doc.source_version, "sequencer": seq or existing.get("sequencer")}
                    self.store.set_payload(physical, doc_id, refresh)
                    for pid in existing["point_ids"]:
                        records[pid] = {**records[pid], **refresh}
                    ok[doc_id] = DocResult(doc_id, "unchanged", existing["chunks"])
                else:
                    to_write.append(prep)
            if to_write:
                vectors = self._embed_chunks(to_write)
                for prep, vecs in zip(to_write, vectors, strict=True):
                    doc_id = prep.doc.id
                    points = []
                    for chunk, vec in zip(prep.chunks, vecs, strict=True):
                        pid = point_id(name, doc_id, chunk.index)
                        payload = self._payload(name, prep, chunk, now, seq_by_id.get(doc_id))
                        points.append(models.PointStruct(id=pid, vector=vec.tolist(), payload=payload))
                    self.store.upsert(physical, points)  # new chunks first, then drop left-overs
                    old = current.get(doc_id)
                    if old and old["chunks"] > len(points):
                        self.store.delete_doc(physical, doc_id, from_chunk=len(points))
                    for pid in old["point_ids"] if old else ():
                        records.pop(pid, None)
                    for p in points:
                        records[str(p.id)] = p.payload
                    ok[doc_id] = DocResult(doc_id, "ingested", len(points))
            if to_write or any(r.status == "unchanged" for r in ok.values()):
                self._rebuild_fluid(name)
        return IngestReport(name, "fluid", _ordered(docs, errors, ok))

    def delete_documents(self, team: str, name: str, doc_ids: Sequence[str], *, sequencers: Sequence[str | None] | None = None) -> list[DocResult]:
        info = self._require(team, name, "write")
        if info.kind != "fluid":
            raise InvalidRequest(f"collection {name!r} is anchored: publish a new version instead of deleting documents")
        physical = self.store.fluid_collection(name)
        results: list[DocResult] = []
        with self._locks[name]:
            records = self._fluid[name]
            current = _docs_view(records)
            for i, doc_id in enumerate(doc_ids):
                seq = sequencers[i] if sequencers else None
                existing = current.pop(doc_id, None)
                if existing is None:
                    results.append(DocResult(doc_id, "not_found"))
                    continue
                if seq and existing.get("sequencer") and not sequencer_newer(seq, existing["sequencer"]):
                    results.append(DocResult(doc_id, "skipped_stale_event", existing["chunks"]))
                    continue
                self.store.delete_doc(physical, doc_id)
                for pid in existing["point_ids"]:
                    records.pop(pid, None)
                results.append(DocResult(doc_id, "deleted", existing["chunks"]))
            if any(r.status == "deleted" for r in results):
                self._rebuild_fluid(name)
        return results

    def documents(self, team: str, name: str) -> dict[str, dict[str, Any]]:
        """Per-document view of a fluid collection (content hash, chunks, ingested_at, source version)."""
        info = self._require(team, name, "read")
        if info.kind == "fluid":
            view = _docs_view(self._fluid[name])
        else:
            snap = self._active.get(name)
            view = _docs_view(dict(zip(snap.point_ids, snap.payloads, strict=True))) if snap else {}
        for v in view.values():
            v.pop("point_ids", None)
        return view

    def staleness(self, team: str, name: str) -> StalenessReport:
        info = self._require(team, name, "read")
        if info.kind != "fluid":
            raise InvalidRequest(f"collection {name!r} is anchored: staleness applies to fluid collections (anchored ones are versioned)")
        view = _docs_view(self._fluid[name])
        now = self.clock()
        times = sorted((v["ingested_at"], d) for d, v in view.items())
        stale = [d for t, d in times if info.max_age_seconds is not None and now - t > info.max_age_seconds]
        return StalenessReport(
            collection=name, documents=len(view), chunks=len(self._fluid[name]), max_age_seconds=info.max_age_seconds,
            stale_documents=len(stale), oldest_ingested_at=times[0][0] if times else None,
            newest_ingested_at=times[-1][0] if times else None, oldest_age_seconds=(now - times[0][0]) if times else None,
            stale_examples=stale[:10],
        )

    # ================================================================================== retrieval
    def retrieve(
        self,
        team: str,
        collections: Sequence[str],
        query: str,
        *,
        top_k: int = 10,
        mode: Mode = "hybrid",
        filters: dict[str, Any] | None = None,
        rerank: bool = False,
    ) -> RetrieveResult:
        if not collections:
            raise InvalidRequest("name at least one collection", "collections")
        if not query or not query.strip():
            raise InvalidRequest("query is empty", "query")
        if len(query) > 4096:
            raise InvalidRequest("query is longer than 4096 characters", "query")
        if not 1 <= top_k <= 100:
            raise InvalidRequest("top_k must be between 1 and 100", "top_k")
        if rerank and self.reranker is None:
            raise InvalidRequest("this service has no reranker configured", "rerank")
        _check_filters(filters)
        for name in collections:  # authorize everything before doing any work
            self.access.require(team, name, "read")
        snaps: list[tuple[CollectionInfo, Snapshot | None]] = []
        for name in dict.fromkeys(collections):
            info = self._entries.get(name)
            if info is None:
                raise NotFound(f"collection {name!r} does not exist")
            snaps.append((info, self._active.get(name)))  # one reference read per collection

        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        qvec: np.ndarray | None = None
        if mode != "bm25" or rerank:
            qvec = self.embedder.embed([query])[0]
        timings["embed_ms"] = (time.perf_counter() - t0) * 1000

        lists: list[tuple[float, list[tuple[str, str]]]] = []
        doc_lists: list[tuple[float, list[tuple[str, str]]]] = []  # (collection, doc id) keys, when aggregating
        aggregate = next((info.fusion.aggregate for info, _ in snaps if info.fusion.aggregate != "none"), "none")
        payloads: dict[tuple[str, str], dict[str, Any]] = {}
        ranks: dict[tuple[str, str], dict[str, int | None]] = {}
        qfilter = _qdrant_filter(filters)
        bm25_ms = dense_ms = 0.0
        bm25_scores: dict[tuple[str, str], float] = {}
        dense_scores: dict[tuple[str, str], float] = {}
        for info, snap in snaps:
            if snap is None:
                continue
            fusion = info.fusion
            depth = max(fusion.candidates, top_k)
            if mode in ("hybrid", "bm25"):
                t = time.perf_counter()
                mask = _mask(snap.payloads, filters) if filters else None
                keys = []
                for rank, (row, score) in enumerate(snap.bm25.top(query, depth, mask), start=1):
                    key = (info.name, snap.point_ids[row])
                    bm25_scores[key] = score
                    payloads[key] = snap.payloads[row]
                    ranks.setdefault(key, {"bm25": None, "dense": None})["bm25"] = rank
                    keys.append(key)
                lists.append((fusion.bm25_weight if mode == "hybrid" else 1.0, keys))
                if aggregate != "none":
                    doc_lists.append((lists[-1][0], _fold_to_docs(keys, bm25_scores, payloads, aggregate)))
                bm25_ms += (time.perf_counter() - t) * 1000
            if mode in ("hybrid", "dense"):
                t = time.perf_counter()
                assert qvec is not None
                keys = []
                for rank, point in enumerate(self.store.search(snap.physical, qvec.tolist(), depth, qfilter), start=1):
                    key = (info.name, str(point.id))
                    dense_scores[key] = float(point.score)
                    payloads.setdefault(key, dict(point.payload or {}))
                    ranks.setdefault(key, {"bm25": None, "dense": None})["dense"] = rank
                    keys.append(key)
                lists.append((fusion.dense_weight if mode == "hybrid" else 1.0, keys))
                if aggregate != "none":
                    doc_lists.append((lists[-1][0], _fold_to_docs(keys, dense_scores, payloads, aggregate)))
                dense_ms += (time.perf_counter() - t) * 1000
        timings["bm25_ms"], timings["dense_ms"] = bm25_ms, dense_ms

        t = time.perf_counter()
        rrf_k = min((info.fusion.rrf_k for info, _ in snaps), default=60.0)
        fused = rrf(lists, k=rrf_k)
        if aggregate != "none":
            fused = _expand_docs(rrf(doc_lists, k=rrf_k), fused, payloads)  # type: ignore[arg-type]
        timings["fusion_ms"] = (time.perf_counter() - t) * 1000

        if rerank and fused:
            t = time.perf_counter()
            assert self.reranker is not None and qvec is not None
            head = fused[: max(self.rerank_depth, top_k)]
            cands = self._candidates(query, qvec, [k for k, _ in head], [s for _, s in head], payloads, snaps, bm25_scores, dense_scores)  # type: ignore[arg-type]
            new_scores = self.reranker.rerank(query, cands)
            order = np.argsort(-np.asarray(new_scores), kind="stable")
            fused = [(head[i][0], float(new_scores[i])) for i in order]
            timings["rerank_ms"] = (time.perf_counter() - t) * 1000

        now = self.clock()
        entries = {info.name: info for info, _ in snaps}
        versions = {info.name: (snap.version if snap else None) for info, snap in snaps}
        hits: list[Hit] = []
        for key, score in fused[:top_k]:
            coll, _pid = key  # type: ignore[misc]
            p = payloads[key]  # type: ignore[index]
            max_age = entries[coll].max_age_seconds
            hits.append(
                Hit(
                    collection=coll, version=versions[coll], doc_id=p["doc_id"], chunk_index=int(p["chunk_index"]),
                    text=p["text"], headings=list(p.get("headings") or []), score=float(score), metadata=dict(p.get("metadata") or {}),
                    ingested_at=float(p["ingested_at"]), source_version=p.get("source_version"),
                    stale=bool(max_age is not None and now - float(p["ingested_at"]) > max_age), ranks=ranks.get(key, {}),  # type: ignore[arg-type]
                )
            )
        timings["total_ms"] = (time.perf_counter() - t0) * 1000
        return RetrieveResult(hits, timings, versions)

    def _candidates(
        self, query: str, qvec: np.ndarray, keys: list[tuple[str, str]], fused: list[float], payloads: dict[tuple[str, str], dict[str, Any]],
        snaps: list[tuple[CollectionInfo, Snapshot | None]], bm25_scores: dict[tuple[str, str], float], dense_scores: dict[tuple[str, str], float],
    ) -> list[Candidate]:
        """Exact BM25 and cosine scores for every candidate, whichever list it came from."""
        by_name = {info.name: snap for info, snap in snaps if snap is not None}
        for name, snap in by_name.items():
            missing_lex = [k for k in keys if k[0] == name and k not in bm25_scores]
            if missing_lex:
                all_scores = snap.bm25.scores(query)
                row_of = {pid: i for i, pid in enumerate(snap.point_ids)}
                for k in missing_lex:
                    row = row_of.get(k[1])
                    bm25_scores[k] = float(all_scores[row]) if row is not None and all_scores.size else 0.0
            missing_dense = [k for k in keys if k[0] == name and k not in dense_scores]
            if missing_dense:
                vectors = self.store.vectors(snap.physical, [k[1] for k in missing_dense])
                for k in missing_dense:
                    vec = vectors.get(k[1])
                    dense_scores[k] = float(np.dot(qvec, vec)) if vec is not None else 0.0
        return [Candidate(_lexical_text(payloads[k]), f, bm25_scores.get(k, 0.0), dense_scores.get(k, 0.0)) for k, f in zip(keys, fused, strict=True)]

    # ------------------------------------------------------------------------------ readiness
    def ping(self) -> None:
        self.store.ping()


# ====================================================================================== helpers
def _lexical_text(payload: dict[str, Any]) -> str:
    headings = payload.get("headings") or []
    return (" > ".join(headings) + "\n\n" + payload["text"]) if headings else payload["text"]


def _fold_to_docs(
    keys: list[tuple[str, str]], scores: dict[tuple[str, str], float], payloads: dict[tuple[str, str], dict[str, Any]], how: str
) -> list[tuple[str, str]]:
    """One retriever's chunk list → its document list, ranked by the max or the sum of the chunk scores."""
    agg: dict[tuple[str, str], float] = {}
    for key in keys:
        doc = (key[0], payloads[key]["doc_id"])
        s = scores[key]
        agg[doc] = (max(agg[doc], s) if how == "max" else agg[doc] + s) if doc in agg else s
    return sorted(agg, key=lambda d: agg[d], reverse=True)


def _expand_docs(
    fused_docs: list[tuple[tuple[str, str], float]], fused_chunks: list[tuple[tuple[str, str], float]], payloads: dict[tuple[str, str], dict[str, Any]]
) -> list[tuple[tuple[str, str], float]]:
    """Documents in fused order, each followed by its candidate chunks in chunk-fusion order; a chunk's
    score is its document's fused score."""
    by_doc: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for key, _ in fused_chunks:
        by_doc.setdefault((key[0], payloads[key]["doc_id"]), []).append(key)
    return [(key, score) for doc, score in fused_docs for key in by_doc.get(doc, ())]


def _docs_view(records: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    view: dict[str, dict[str, Any]] = {}
    for pid, p in records.items():
        v = view.setdefault(
            p["doc_id"],
            {"content_hash": p["content_hash"], "chunks": 0, "ingested_at": p["ingested_at"], "source_version": p.get("source_version"),
             "sequencer": p.get("sequencer"), "metadata": p.get("metadata") or {}, "point_ids": []},
        )
        v["chunks"] += 1
        v["point_ids"].append(pid)
    return view


def _ordered(docs: Sequence[RawDocument], errors: dict[int, DocResult], ok: dict[str, DocResult]) -> list[DocResult]:
    return [errors[i] if i in errors else ok[d.id] for i, d in enumerate(docs)]


def sequencer_newer(candidate: str, current: str) -> bool:
    """S3 event ``sequencer`` values are hex strings of varying length for one key; per AWS, pad the
    shorter with zeros on the right, then compare lexicographically: the larger is later."""
    width = max(len(candidate), len(current))
    return candidate.upper().ljust(width, "0") > current.upper().ljust(width, "0")


def _check_filters(filters: dict[str, Any] | None) -> None:
    for key, value in (filters or {}).items():
        if not _FILTER_KEY_RE.match(key):
            raise InvalidRequest(f"filter key {key!r} must be 1-64 chars of letters, digits and _.-", "filters")
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, (str, int, bool)) and not isinstance(v, float) for v in values):
            raise InvalidRequest(f"filter {key!r} must be a string, integer or boolean, or a non-empty list of them", "filters")
        if len({type(v) for v in values}) > 1:
            raise InvalidRequest(f"filter {key!r} mixes value types", "filters")


def _qdrant_filter(filters: dict[str, Any] | None) -> models.Filter | None:
    if not filters:
        return None
    must: list[Any] = []
    for key, value in filters.items():
        match = models.MatchAny(any=value) if isinstance(value, list) else models.MatchValue(value=value)
        must.append(models.FieldCondition(key=f"metadata.{key}", match=match))
    return models.Filter(must=must)


def _mask(payloads: Sequence[dict[str, Any]], filters: dict[str, Any]) -> np.ndarray:
    """The same semantics as the Qdrant filter: every key must match; a list value means "any of";
    a list stored in metadata matches when any element matches."""

    def ok(meta: dict[str, Any]) -> bool:
        for key, want in filters.items():
            have = meta.get(key)
            haves = have if isinstance(have, list) else [have]
            wants = want if isinstance(want, list) else [want]
            if not any(_same(h, w) for h in haves for w in wants):
                return False
        return True

    return np.fromiter((ok(p.get("metadata") or {}) for p in payloads), dtype=bool, count=len(payloads))


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


__all__ = [
    "AccessDenied", "CollectionInfo", "Conflict", "DocResult", "FusionConfig", "Hit", "IngestReport", "InvalidRequest",
    "KnowledgeBase", "NotFound", "RetrieveResult", "StalenessReport", "VersionInfo", "sequencer_newer",
]
