"""Anchored versions: registering a finished version, promote / rollback (one atomic alias move and one
reference swap), deleting a version, and **staging** — an anchored version assembled over as many
requests as needed (open → add documents … → commit, optionally promote; or abort). A staging
version lives in its own Qdrant collection and in the collection's registry entry with an expiry;
queries never read it, because only a committed, fully loaded version can become the snapshot a query
reads. An abandoned staging version expires (``staging_ttl_seconds`` after it was opened or last
written) and is dropped by the next sweep (every staging call, every start, and the service's timer)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .documents import RawDocument
from .ingestion import ordered
from .store import point_id
from .models import CollectionInfo, Conflict, DocResult, IngestReport, InvalidRequest, NotFound, StagingInfo, VersionInfo

if TYPE_CHECKING:
    from .engine import KnowledgeBase


def embedder_mismatch(what: str, built_by: str, embedder: str, remedy: str) -> str:
    """Why vectors one embedder wrote cannot be searched or extended by a service running another: the
    anchored version being promoted or served, a fluid collection, or a staging version."""
    return (f"{what} was embedded by {built_by!r}, but this service embeds with {embedder!r} "
            f"(TIERWISE_RAG_EMBED_QUANTIZED / TIERWISE_RAG_EMBEDDER): {remedy}")


def version_mismatch(collection: str, meta: VersionInfo, embedder: str) -> str:
    return embedder_mismatch(f"version {meta.id!r} of {collection!r}", meta.embedder, embedder,
                             "re-ingest the collection with this embedder, or run the service with the one that built the version")


class VersionsMixin:
    """The version half of :class:`~tierwise_rag.engine.KnowledgeBase`."""

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
        meta = next((v for v in info.versions if v.id == version), None)
        if meta is None:
            raise NotFound(f"collection {info.name!r} has no version {version!r}")
        if meta.embedder != self.embedder.name:  # its vectors would be searched with another model's query vectors
            raise Conflict(version_mismatch(info.name, meta, self.embedder.name))
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
            physical = self._version_physical(name, version)
            new = info.model_copy(
                update={"versions": [v for v in info.versions if v.id != version], "history": [h for h in info.history if h != version]}
            )
            self.store.save_entry(new.model_dump())
            self._entries[name] = new
            self._versions.pop((name, version), None)
            self.store.drop_physical(physical)
            return new

    def _register_version(
        self, info: CollectionInfo, version: str, physical: str, items: list[tuple[str, dict[str, Any]]], *, default_physical: bool
    ) -> CollectionInfo:
        """Load the version's snapshot (BM25 built once over all its chunks), then register it: the
        version exists once the registry entry is saved (a crash before leaves only an orphan)."""
        self._versions[(info.name, version)] = self._snapshot(info.name, "anchored", version, physical, items)
        meta = VersionInfo(
            id=version, created_at=self.clock(), documents=len({p["doc_id"] for _, p in items}), chunks=len(items),
            embedder=self.embedder.name, physical=None if default_physical else physical,
            chunking={"max_tokens": self.chunking.max_tokens, "overlap_tokens": self.chunking.overlap_tokens},
        )
        info = info.model_copy(update={"versions": [*info.versions, meta]})
        self.store.save_entry(info.model_dump())
        self._entries[info.name] = info
        return info

    # ------------------------------------------------------------------------------ staging
    def open_staging(self, team: str, name: str, *, ttl_seconds: float | None = None) -> StagingInfo:
        """Start an anchored version that is filled by :meth:`stage_documents` and published by :meth:`commit_staging`."""
        info = self._require(team, name, "write")
        if info.kind != "anchored":
            raise InvalidRequest(f"collection {name!r} is fluid: staging builds anchored versions")
        ttl = self.staging_ttl_seconds if ttl_seconds is None else ttl_seconds
        if not 0 < ttl <= 7 * 86400:
            raise InvalidRequest(f"ttl_seconds must be in (0, 604800]; got {ttl}", "ttl_seconds")
        self.expire_staging()
        with self._locks[name]:
            info = self._entries[name]
            if len(info.staging) >= self.max_open_staging:
                raise Conflict(f"collection {name!r} already has {len(info.staging)} open staging versions; commit or abort one")
            sid = secrets.token_hex(8)
            now = self.clock()
            physical = self.store.staging_collection(name, sid)
            self.store.create_physical(physical, self.embedder.dim)
            staging = StagingInfo(id=sid, created_at=now, expires_at=now + ttl, physical=physical, embedder=self.embedder.name)
            self._save_staging(info, [*info.staging, staging])
        return staging

    def stage_documents(self, team: str, name: str, staging_id: str, docs: Sequence[RawDocument]) -> list[DocResult]:
        """Add (or replace, by id) documents in a staging version; each call extends its expiry."""
        self._require(team, name, "write")
        if not docs:
            raise InvalidRequest("no documents", "documents")
        prepared, errors = self._prepare_batch(docs)  # chunking happens outside the collection lock
        with self._locks[name]:
            info = self._entries[name]
            staging = self._staging(info, staging_id)
            now = self.clock()
            if prepared:
                # A re-sent document replaces its earlier chunks (found by its first chunk's point id).
                firsts = {point_id(name, p.doc.id, 0): p.doc.id for p in prepared}
                for pid in self.store.existing(staging.physical, list(firsts)):
                    self.store.delete_doc(staging.physical, firsts[pid])
                self._write_points(name, staging.physical, prepared, now, None)
            ttl = staging.expires_at - staging.created_at
            renewed = staging.model_copy(update={"expires_at": now + ttl})
            self._save_staging(info, [renewed if s.id == staging_id else s for s in info.staging])
        ok = {p.doc.id: DocResult(p.doc.id, "ingested", len(p.chunks)) for p in prepared}
        return ordered(docs, errors, ok)

    def commit_staging(self, team: str, name: str, staging_id: str, *, promote: bool = False) -> IngestReport:
        """Publish a staging version as an anchored version (its id hashes its content, as for a one-request
        ingest), or drop it as ``unchanged`` when that version already exists; promote it if asked."""
        self._require(team, name, "write")
        if promote:
            self.access.require(team, name, "admin")
        with self._locks[name]:
            info = self._entries[name]
            staging = self._staging(info, staging_id)
            items = self.store.scroll_all(staging.physical)
            if not items:
                raise InvalidRequest(f"staging version {staging_id!r} has no documents", "staging_id")
            docs = {p["doc_id"]: p["content_hash"] for _, p in items}
            counts: dict[str, int] = {}
            for _, p in items:
                counts[p["doc_id"]] = counts.get(p["doc_id"], 0) + 1
            version = self.version_id(docs.items())
            created = version not in {v.id for v in info.versions}
            remaining = [s for s in info.staging if s.id != staging_id]
            if created:
                info = self._register_version(info.model_copy(update={"staging": remaining}), version, staging.physical, items,
                                              default_physical=False)
            else:
                self._save_staging(info, remaining)
                info = self._entries[name]
                self.store.drop_physical(staging.physical)
            promoted = False
            if promote and info.active_version != version:
                self._promote_locked(info, version, rollback=False)
                promoted = True
        status = "ingested" if created else "unchanged"
        results = [DocResult(d, status, counts[d]) for d in sorted(docs)]
        return IngestReport(name, "anchored", results, version=version, promoted=promoted, created_version=created)

    def abort_staging(self, team: str, name: str, staging_id: str) -> None:
        self._require(team, name, "write")
        with self._locks[name]:
            info = self._entries[name]
            staging = self._staging(info, staging_id, writing=False)
            self._save_staging(info, [s for s in info.staging if s.id != staging_id])
            self.store.drop_physical(staging.physical)

    def list_staging(self, team: str, name: str) -> list[StagingInfo]:
        self._require(team, name, "read")
        self.expire_staging()
        return list(self._entries[name].staging)

    def expire_staging(self) -> list[str]:
        """Drop every staging version past its expiry; returns ``collection/staging id`` of those dropped."""
        now = self.clock()
        dropped: list[str] = []
        for name in list(self._entries):
            info = self._entries.get(name)
            if info is None or not any(s.expires_at <= now for s in info.staging):
                continue
            with self._locks[name]:
                info = self._entries.get(name)
                if info is None:
                    continue
                expired = [s for s in info.staging if s.expires_at <= now]
                self._save_staging(info, [s for s in info.staging if s.expires_at > now])
                for s in expired:
                    self.store.drop_physical(s.physical)
                    dropped.append(f"{name}/{s.id}")
        return dropped

    def _staging(self, info: CollectionInfo, staging_id: str, *, writing: bool = True) -> StagingInfo:
        for s in info.staging:
            if s.id == staging_id:
                if s.expires_at <= self.clock():
                    raise NotFound(f"staging version {staging_id!r} of {info.name!r} has expired")
                # Adding to or committing it would mix (or publish) another model's vectors, e.g. after the
                # service restarted with another embedder mid-staging. Aborting writes nothing: no check.
                if writing and s.embedder is not None and s.embedder != self.embedder.name:
                    raise Conflict(embedder_mismatch(
                        f"staging version {staging_id!r} of {info.name!r}", s.embedder, self.embedder.name,
                        "abort it and stage the documents again, or finish it with the service that opened it"))
                return s
        raise NotFound(f"collection {info.name!r} has no open staging version {staging_id!r} (committed, aborted or expired)")

    def _save_staging(self, info: CollectionInfo, staging: list[StagingInfo]) -> None:
        new = info.model_copy(update={"staging": staging})
        self.store.save_entry(new.model_dump())
        self._entries[info.name] = new
