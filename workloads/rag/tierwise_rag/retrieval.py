"""Query path: authorize, read one snapshot reference per collection, run BM25 and dense retrieval,
fuse (weighted RRF over chunks, or over documents after max/sum folding), optionally rerank the top
of the fused list, and build :class:`Hit` objects. Also the metadata-filter semantics shared by both
retrievers (a Qdrant filter for dense, a boolean mask for BM25)."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from qdrant_client import models

from .fusion import rrf
from .models import CollectionInfo, Conflict, Hit, InvalidRequest, Mode, NotFound, RetrieveResult, Snapshot
from .rerank import Candidate

if TYPE_CHECKING:
    from .engine import KnowledgeBase

_FILTER_KEY_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class RetrievalMixin:
    """The ``retrieve`` half of :class:`~tierwise_rag.engine.KnowledgeBase`."""

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
            if (why := self._embedder_mismatch(info)) is not None:
                raise Conflict(why)
            snaps.append((info, self._active.get(name)))  # one reference read per collection

        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        qvec: np.ndarray | None = None
        if mode != "bm25" or (rerank and getattr(self.reranker, "needs_scores", True)):
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
            assert self.reranker is not None
            head = fused[: max(self.rerank_depth, top_k)]
            if getattr(self.reranker, "needs_scores", True):  # score-level: exact BM25 and cosine for every candidate
                cands = self._candidates(query, qvec, [k for k, _ in head], [s for _, s in head], payloads, snaps, bm25_scores, dense_scores)  # type: ignore[arg-type]
            else:  # a cross-encoder reads the text itself
                cands = [Candidate(lexical_text(payloads[k]), s, 0.0, 0.0) for k, s in head]  # type: ignore[index]
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
        return [Candidate(lexical_text(payloads[k]), f, bm25_scores.get(k, 0.0), dense_scores.get(k, 0.0)) for k, f in zip(keys, fused, strict=True)]



def lexical_text(payload: dict[str, Any]) -> str:
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
