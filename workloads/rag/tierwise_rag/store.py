"""Qdrant access: physical collections, aliases, the collection registry, and chunk points.

One code path for both deployments: ``QdrantClient(path=...)`` / ``QdrantClient(":memory:")`` (local
mode: in-process, no server) and ``QdrantClient(url=...)`` (the Qdrant server the serving stack
deploys on EKS). Layout, with ``p`` the configured prefix:

* ``p__meta`` — one point per logical collection whose payload is its registry entry (kind,
  fusion weights, versions, active version, promotion history). Written last, so a crash mid-build
  leaves only an unregistered physical collection, which :meth:`Store.orphans` finds.
* ``p__<name>__v<version>`` — one immutable physical collection per anchored version.
* ``p__<name>__fluid`` — the one mutable physical collection of a fluid collection.
* ``p__<name>__s<staging id>`` — an anchored version being staged over several requests; on commit
  it becomes that version's collection (the registry entry records its name), so nothing is copied.
* alias ``p__<name>`` → the active physical collection (moved atomically on promote/rollback), for
  readers outside this process.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

_NS = uuid.UUID("6f1c2a4e-8f0b-4a53-9a7e-2f4b9c1d0e77")


def point_id(collection: str, doc_id: str, chunk_index: int) -> str:
    return str(uuid.uuid5(_NS, f"{collection}\x1f{doc_id}\x1f{chunk_index}"))


class Store:
    def __init__(self, client: QdrantClient, *, prefix: str = "tw", local: bool) -> None:
        self.client = client
        self.prefix = prefix
        # Local mode is plain Python dicts without internal locking: serialize calls into it.
        # A Qdrant server handles concurrency itself.
        self._lock: contextlib.AbstractContextManager[Any] = threading.RLock() if local else contextlib.nullcontext()
        self.meta = f"{prefix}__meta"
        self.local = local

    @contextlib.contextmanager
    def locked(self) -> Iterator[QdrantClient]:
        with self._lock:
            yield self.client

    # ------------------------------------------------------------------------------- naming
    def alias(self, name: str) -> str:
        return f"{self.prefix}__{name}"

    def version_collection(self, name: str, version: str) -> str:
        return f"{self.prefix}__{name}__v{version}"

    def fluid_collection(self, name: str) -> str:
        return f"{self.prefix}__{name}__fluid"

    def staging_collection(self, name: str, staging_id: str) -> str:
        return f"{self.prefix}__{name}__s{staging_id}"

    # ------------------------------------------------------------------------------- registry
    def ensure_meta(self) -> None:
        with self.locked() as c:
            if not c.collection_exists(self.meta):
                c.create_collection(self.meta, vectors_config=models.VectorParams(size=1, distance=models.Distance.DOT))

    def _meta_id(self, name: str) -> str:
        return str(uuid.uuid5(_NS, f"meta\x1f{name}"))

    def load_registry(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        offset = None
        with self.locked() as c:
            while True:
                points, offset = c.scroll(self.meta, limit=256, offset=offset, with_payload=True, with_vectors=False)
                entries.extend(dict(p.payload or {}) for p in points)
                if offset is None:
                    return entries

    def save_entry(self, entry: dict[str, Any]) -> None:
        with self.locked() as c:
            c.upsert(self.meta, points=[models.PointStruct(id=self._meta_id(entry["name"]), vector=[0.0], payload=entry)], wait=True)

    def delete_entry(self, name: str) -> None:
        with self.locked() as c:
            c.delete(self.meta, points_selector=models.PointIdsList(points=[self._meta_id(name)]), wait=True)

    # ------------------------------------------------------------------------------- collections
    def create_physical(self, physical: str, dim: int) -> None:
        with self.locked() as c:
            if c.collection_exists(physical):
                c.delete_collection(physical)
            c.create_collection(physical, vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE))
            if not self.local:  # local mode scans payloads; a server needs the index for delete-by-doc
                c.create_payload_index(physical, "doc_id", models.PayloadSchemaType.KEYWORD)
                c.create_payload_index(physical, "chunk_index", models.PayloadSchemaType.INTEGER)

    def ensure_physical(self, physical: str, dim: int) -> None:
        with self.locked() as c:
            exists = c.collection_exists(physical)
        if not exists:
            self.create_physical(physical, dim)

    def drop_physical(self, physical: str) -> None:
        with self.locked() as c:
            if c.collection_exists(physical):
                c.delete_collection(physical)

    def point_alias(self, name: str, physical: str) -> None:
        """Move alias ``p__<name>`` to ``physical`` in one atomic alias update."""
        alias = self.alias(name)
        with self.locked() as c:
            current = {a.alias_name for a in c.get_aliases().aliases}
            ops: list[Any] = []
            if alias in current:
                ops.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
            ops.append(models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=physical, alias_name=alias)))
            c.update_collection_aliases(change_aliases_operations=ops)

    def drop_alias(self, name: str) -> None:
        alias = self.alias(name)
        with self.locked() as c:
            if alias in {a.alias_name for a in c.get_aliases().aliases}:
                c.update_collection_aliases(
                    change_aliases_operations=[models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))]
                )

    def aliases(self) -> dict[str, str]:
        with self.locked() as c:
            return {a.alias_name: a.collection_name for a in c.get_aliases().aliases}

    def physical_collections(self) -> list[str]:
        with self.locked() as c:
            return [col.name for col in c.get_collections().collections if col.name.startswith(self.prefix + "__")]

    # ------------------------------------------------------------------------------- points
    def upsert(self, physical: str, points: list[models.PointStruct], batch: int = 256) -> None:
        for i in range(0, len(points), batch):
            with self.locked() as c:
                c.upsert(physical, points=points[i : i + batch], wait=True)

    def delete_doc(self, physical: str, doc_id: str, from_chunk: int = 0) -> None:
        must: list[Any] = [models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id))]
        if from_chunk:
            must.append(models.FieldCondition(key="chunk_index", range=models.Range(gte=from_chunk)))
        with self.locked() as c:
            c.delete(physical, points_selector=models.FilterSelector(filter=models.Filter(must=must)), wait=True)

    def set_payload(self, physical: str, doc_id: str, payload: dict[str, Any]) -> None:
        flt = models.Filter(must=[models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id))])
        with self.locked() as c:
            c.set_payload(physical, payload=payload, points=flt, wait=True)

    def scroll_all(self, physical: str) -> list[tuple[str, dict[str, Any]]]:
        out: list[tuple[str, dict[str, Any]]] = []
        offset = None
        while True:
            with self.locked() as c:
                points, offset = c.scroll(physical, limit=512, offset=offset, with_payload=True, with_vectors=False)
            out.extend((str(p.id), dict(p.payload or {})) for p in points)
            if offset is None:
                return out

    def search(self, physical: str, vector: list[float], limit: int, flt: models.Filter | None) -> list[models.ScoredPoint]:
        with self.locked() as c:
            return c.query_points(physical, query=vector, limit=limit, query_filter=flt, with_payload=True).points

    def vectors(self, physical: str, ids: list[str]) -> dict[str, "np.ndarray"]:
        with self.locked() as c:
            points = c.retrieve(physical, ids=ids, with_vectors=True, with_payload=False)
        return {str(p.id): np.asarray(p.vector, dtype=np.float32) for p in points}

    def existing(self, physical: str, ids: list[str]) -> list[str]:
        """Which of ``ids`` exist in ``physical``."""
        with self.locked() as c:
            return [str(p.id) for p in c.retrieve(physical, ids=ids, with_vectors=False, with_payload=False)]

    def ping(self) -> None:
        with self.locked() as c:
            c.get_collections()
