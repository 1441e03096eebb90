"""Write path: validate and chunk documents, embed them in cross-document batches, and write them —
a fluid collection's upserts and deletes (new chunks before left-overs are dropped; S3 sequencer
ordering), and an anchored collection's one-request version. Multi-request anchored versions
(staging) live in :mod:`tierwise_rag.versions` and reuse the helpers here."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from qdrant_client import models

from .chunking import Chunk, chunk_document
from .documents import Document, DocumentError, RawDocument, validate
from .models import CollectionInfo, Conflict, DocResult, IngestReport, InvalidRequest
from .store import point_id

if TYPE_CHECKING:
    from .engine import KnowledgeBase


@dataclass(slots=True)
class Prepared:
    doc: Document
    chunks: list[Chunk]


class IngestionMixin:
    """The write half of :class:`~tierwise_rag.engine.KnowledgeBase` (everything but versions)."""

    def _embed_text(self, chunk: Chunk) -> str:
        return chunk.embed_text

    def _prepare(self, raw: RawDocument) -> Prepared:
        doc = validate(raw, max_bytes=self.max_document_bytes)
        chunks = chunk_document(doc.text, doc.content_type, self.chunking, self.embedder.count_tokens)
        if not chunks:
            raise DocumentError("empty_document", f"no text could be extracted from this {doc.content_type} document")
        if len(chunks) > self.max_chunks_per_document:
            raise DocumentError(
                "document_too_large",
                f"document yields {len(chunks)} chunks; the limit is {self.max_chunks_per_document}: split it",
            )
        return Prepared(doc, chunks)

    def _prepare_batch(self, docs: Sequence[RawDocument]) -> tuple[list[Prepared], dict[int, DocResult]]:
        prepared: list[Prepared] = []
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

    def _payload(self, name: str, prep: Prepared, chunk: Chunk, now: float, sequencer: str | None) -> dict[str, Any]:
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

    def _embed_chunks(self, preps: list[Prepared]) -> list[np.ndarray]:
        texts = [self._embed_text(c) for p in preps for c in p.chunks]
        vectors = self.embedder.embed(texts)
        out: list[np.ndarray] = []
        pos = 0
        for p in preps:
            out.append(vectors[pos : pos + len(p.chunks)])
            pos += len(p.chunks)
        return out

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
            return IngestReport(info.name, "anchored", ordered(docs, errors, {}))
        version = self.version_id((p.doc.id, p.doc.content_hash) for p in prepared)
        with self._locks[info.name]:
            info = self._entries[info.name]
            created = version not in {v.id for v in info.versions}
            status = "ingested" if created else "unchanged"
            if created:
                physical = self.store.version_collection(info.name, version)
                self.store.create_physical(physical, self.embedder.dim)
                items = self._write_points(info.name, physical, prepared, self.clock(), None)
                info = self._register_version(info, version, physical, items, default_physical=True)
            promoted = False
            if promote and info.active_version != version:
                self._promote_locked(info, version, rollback=False)
                promoted = True
        ok = {p.doc.id: DocResult(p.doc.id, status, len(p.chunks)) for p in prepared}
        return IngestReport(info.name, "anchored", ordered(docs, errors, ok), version=version, promoted=promoted, created_version=created)

    def version_id(self, docs: Iterable[tuple[str, str]]) -> str:
        """Anchored version id: a hash of the embedder name, the chunking config and the sorted
        ``(doc id, content hash)`` pairs — the same content gives the same id however it arrived."""
        digest = hashlib.sha256()
        digest.update(f"{self.embedder.name}\x1f{self.chunking.max_tokens}\x1f{self.chunking.overlap_tokens}".encode())
        for doc_id, content_hash in sorted(docs):
            digest.update(f"\x1e{doc_id}\x1f{content_hash}".encode())
        return digest.hexdigest()[:20]

    def _write_points(
        self, name: str, physical: str, preps: list[Prepared], now: float, sequencers: dict[str, str | None] | None
    ) -> list[tuple[str, dict[str, Any]]]:
        """Embed every chunk of ``preps`` in one cross-document batch and upsert them in bulk."""
        points: list[models.PointStruct] = []
        items: list[tuple[str, dict[str, Any]]] = []
        for prep, vecs in zip(preps, self._embed_chunks(preps), strict=True):
            seq = sequencers.get(prep.doc.id) if sequencers else None
            for chunk, vec in zip(prep.chunks, vecs, strict=True):
                pid = point_id(name, prep.doc.id, chunk.index)
                payload = self._payload(name, prep, chunk, now, seq)
                points.append(models.PointStruct(id=pid, vector=vec.tolist(), payload=payload))
                items.append((pid, payload))
        self.store.upsert(physical, points)
        return items

    def _ingest_fluid(self, info: CollectionInfo, docs: Sequence[RawDocument], sequencers: Sequence[str | None] | None) -> IngestReport:
        prepared, errors = self._prepare_batch(docs)
        seq_by_id = {d.id: (sequencers[i] if sequencers else None) for i, d in enumerate(docs)}
        name = info.name
        physical = self.store.fluid_collection(name)
        ok: dict[str, DocResult] = {}
        with self._locks[name]:
            if (why := self._embedder_mismatch(self._entries[name])) is not None:  # would mix two models' vectors
                raise Conflict(why)
            records = self._fluid[name]
            current = docs_view(records)
            now = self.clock()
            to_write: list[Prepared] = []
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
                # One embedding batch and one bulk upsert for all changed documents: new chunks first,
                # then each shrunken document's left-over chunks are dropped.
                items = self._write_points(name, physical, to_write, now, seq_by_id)
                by_doc: dict[str, list[tuple[str, dict[str, Any]]]] = {}
                for pid, payload in items:
                    by_doc.setdefault(payload["doc_id"], []).append((pid, payload))
                for prep in to_write:
                    doc_id = prep.doc.id
                    new_items = by_doc.get(doc_id, [])
                    old = current.get(doc_id)
                    if old and old["chunks"] > len(new_items):
                        self.store.delete_doc(physical, doc_id, from_chunk=len(new_items))
                    for pid in old["point_ids"] if old else ():
                        records.pop(pid, None)
                    records.update(new_items)
                    ok[doc_id] = DocResult(doc_id, "ingested", len(new_items))
            if to_write or any(r.status == "unchanged" for r in ok.values()):
                self._rebuild_fluid(name)
        return IngestReport(name, "fluid", ordered(docs, errors, ok))

    def delete_documents(self, team: str, name: str, doc_ids: Sequence[str], *, sequencers: Sequence[str | None] | None = None) -> list[DocResult]:
        info = self._require(team, name, "write")
        if info.kind != "fluid":
            raise InvalidRequest(f"collection {name!r} is anchored: publish a new version instead of deleting documents")
        physical = self.store.fluid_collection(name)
        results: list[DocResult] = []
        with self._locks[name]:
            records = self._fluid[name]
            current = docs_view(records)
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


def docs_view(records: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
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


def ordered(docs: Sequence[RawDocument], errors: dict[int, DocResult], ok: dict[str, DocResult]) -> list[DocResult]:
    return [errors[i] if i in errors else ok[d.id] for i, d in enumerate(docs)]


def sequencer_newer(candidate: str, current: str) -> bool:
    """S3 event ``sequencer`` values are hex strings of varying length for one key; per AWS, pad the
    shorter with zeros on the right, then compare lexicographically: the larger is later."""
    width = max(len(candidate), len(current))
    return candidate.upper().ljust(width, "0") > current.upper().ljust(width, "0")

