"""The knowledge base: construction, start-up (registry load, orphan cleanup), collection admin and
per-collection views. Usable in-process (this is "the library") and wrapped by the HTTP API. Every
public method takes the caller's team and checks it against the :class:`AccessPolicy` before
touching anything. The jobs live in one module each: :mod:`.ingestion` (write path),
:mod:`.versions` (anchored versions, promote/rollback, staging), :mod:`.retrieval` (query path),
:mod:`.models` (data model).

Consistency model
-----------------
A query reads one immutable :class:`Snapshot` per collection, taken with a single reference read at
the start of the query. For an anchored collection the snapshot pins one version: its BM25 index
and the physical Qdrant collection of that version, which is never written after it is built. A
promote or rollback swaps the reference in one assignment (after the new snapshot is fully loaded)
and moves the Qdrant alias in one atomic alias update, so a query sees the old version or the new
one, never a mix; a staging version is never a snapshot at all until it is committed. Fluid
collections are mutable: a document's chunks are upserted before its left-over chunks are deleted,
so a document never disappears during an update, and the BM25 snapshot is rebuilt once after every
write batch (read-your-writes for the writer).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

from .access import AccessDenied, AccessPolicy, Action
from .chunking import ChunkingConfig
from .embedding import Embedder
from .ingestion import IngestionMixin, docs_view, sequencer_newer
from .lexical import BM25Index, LexicalConfig
from .models import (
    CollectionInfo, Conflict, DocResult, FusionConfig, Hit, IngestReport, InvalidRequest, Kind, NotFound, RetrieveResult,
    Snapshot, StagingInfo, StalenessReport, VersionInfo,
)
from .rerank import Reranker
from .retrieval import RetrievalMixin, lexical_text
from .store import Store
from .versions import VersionsMixin, embedder_mismatch, version_mismatch

_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]|_(?!_)){0,62}$")


class KnowledgeBase(IngestionMixin, VersionsMixin, RetrievalMixin):
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
        rerank_depth: int = 50,
        lexical: LexicalConfig | None = None,
        staging_ttl_seconds: float = 3600.0,
        max_open_staging: int = 8,
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
        self.staging_ttl_seconds = staging_ttl_seconds
        self.max_open_staging = max_open_staging
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
                if self._embedder_mismatch(info):  # this collection only (queries get 409); the others keep serving
                    continue
                self._active[info.name] = self._version_snapshot(info.name, info.active_version)
        known = {self.store.meta}
        for info in self._entries.values():
            if info.kind == "fluid":
                known.add(self.store.fluid_collection(info.name))
            known.update(v.physical or self.store.version_collection(info.name, v.id) for v in info.versions)
            known.update(s.physical for s in info.staging)
        for physical in self.store.physical_collections():
            if physical not in known:
                self.store.drop_physical(physical)
        self.expire_staging()

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

    def _snapshot(self, name: str, kind: Kind, version: str | None, physical: str, items: list[tuple[str, dict[str, Any]]]) -> Snapshot:
        items = sorted(items, key=lambda kv: (kv[1]["doc_id"], kv[1]["chunk_index"]))
        texts = [lexical_text(p) for _, p in items]
        return Snapshot(name, kind, version, physical, tuple(k for k, _ in items), tuple(p for _, p in items), BM25Index(texts, self.lexical))

    def _version_snapshot(self, name: str, version: str) -> Snapshot:
        key = (name, version)
        snap = self._versions.get(key)
        if snap is None:
            physical = self._version_physical(name, version)
            snap = self._snapshot(name, "anchored", version, physical, self.store.scroll_all(physical))
            self._versions[key] = snap
        return snap

    def _rebuild_fluid(self, name: str) -> None:
        physical = self.store.fluid_collection(name)
        self._active[name] = self._snapshot(name, "fluid", None, physical, list(self._fluid[name].items()))


    def _version_physical(self, name: str, version: str) -> str:
        for v in self._entries[name].versions:
            if v.id == version and v.physical:
                return v.physical
        return self.store.version_collection(name, version)

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
            info = CollectionInfo(name=name, kind=kind, fusion=fusion or FusionConfig(), max_age_seconds=max_age_seconds,
                                  created_at=self.clock(), embedder=self.embedder.name if kind == "fluid" else None)
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

    def _embedder_mismatch(self, info: CollectionInfo) -> str | None:
        """Why the collection cannot be served or (fluid) written by this service, else None: its active
        version, or its fluid points, came from another embedder. Derived from the registry on every call,
        so promote, rollback and drop need no bookkeeping of their own. A fluid collection created before
        its embedder was recorded (``embedder`` None) is not checked: nothing says which model wrote it."""
        if info.kind == "fluid":
            if info.embedder is None or info.embedder == self.embedder.name:
                return None
            return embedder_mismatch(f"fluid collection {info.name!r}", info.embedder, self.embedder.name,
                                     "drop it, recreate it and re-ingest its documents with this embedder, or run the "
                                     "service with the one that built it")
        if not info.active_version:
            return None
        meta = next(v for v in info.versions if v.id == info.active_version)
        return None if meta.embedder == self.embedder.name else version_mismatch(info.name, meta, self.embedder.name)

    def drop_collection(self, team: str, name: str) -> None:
        self._require(team, name, "admin")
        with self._locks[name]:
            info = self._entries[name]
            self.store.delete_entry(name)  # unregister first: a crash after this leaves only orphans
            self._entries.pop(name, None)
            self._active.pop(name, None)
            self._fluid.pop(name, None)
            self.store.drop_alias(name)
            physicals = [self.store.fluid_collection(name)] if info.kind == "fluid" else [
                v.physical or self.store.version_collection(name, v.id) for v in info.versions]
            physicals += [s.physical for s in info.staging]
            for physical in physicals:
                self.store.drop_physical(physical)
            for key in [k for k in self._versions if k[0] == name]:
                del self._versions[key]

    def list_collections(self, team: str) -> list[CollectionInfo]:
        return [info for name, info in sorted(self._entries.items()) if self.access.allows(team, name, "read")]

    def get_collection(self, team: str, name: str) -> CollectionInfo:
        return self._require(team, name, "read")

    def documents(self, team: str, name: str) -> dict[str, dict[str, Any]]:
        """Per-document view of a fluid collection (content hash, chunks, ingested_at, source version)."""
        info = self._require(team, name, "read")
        if info.kind == "fluid":
            view = docs_view(self._fluid[name])
        else:
            snap = self._active.get(name)
            view = docs_view(dict(zip(snap.point_ids, snap.payloads, strict=True))) if snap else {}
        for v in view.values():
            v.pop("point_ids", None)
        return view

    def staleness(self, team: str, name: str) -> StalenessReport:
        info = self._require(team, name, "read")
        if info.kind != "fluid":
            raise InvalidRequest(f"collection {name!r} is anchored: staleness applies to fluid collections (anchored ones are versioned)")
        view = docs_view(self._fluid[name])
        now = self.clock()
        times = sorted((v["ingested_at"], d) for d, v in view.items())
        stale = [d for t, d in times if info.max_age_seconds is not None and now - t > info.max_age_seconds]
        return StalenessReport(
            collection=name, documents=len(view), chunks=len(self._fluid[name]), max_age_seconds=info.max_age_seconds,
            stale_documents=len(stale), oldest_ingested_at=times[0][0] if times else None,
            newest_ingested_at=times[-1][0] if times else None, oldest_age_seconds=(now - times[0][0]) if times else None,
            stale_examples=stale[:10],
        )

    # ------------------------------------------------------------------------------ readiness
    def ping(self) -> None:
        self.store.ping()


__all__ = [
    "AccessDenied", "CollectionInfo", "Conflict", "DocResult", "FusionConfig", "Hit", "IngestReport", "InvalidRequest",
    "KnowledgeBase", "NotFound", "RetrieveResult", "StagingInfo", "StalenessReport", "VersionInfo", "sequencer_newer",
]
