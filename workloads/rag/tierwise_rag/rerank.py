"""Second-stage reranking.

No cross-encoder ships its weights inside a PyPI package reachable here (every cross-encoder
package found downloads weights from a hub at run time, which this platform forbids), so the
reranker is a *score-level* one: convex combination of the two first-stage relevance scores over
the fused candidate set, as analysed by Bruch, Gai & Ingber, "An Analysis of Fusion Functions for
Hybrid Retrieval" (ACM TOIS 2023). RRF looks only at ranks and throws away how *much* better one
candidate is than the next; the convex combination puts it back:

    score(d) = alpha * minmax(cos(q, d)) + (1 - alpha) * minmax(bm25(q, d))

where both scores are recomputed exactly for every candidate (a BM25-only candidate gets its real
cosine, a dense-only one its real BM25), and min-max normalization is over the candidate set.
``alpha`` is a per-deployment setting; the benchmark reports the value it used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True, slots=True)
class Candidate:
    text: str
    fused_score: float
    bm25_score: float
    dense_score: float


class Reranker(Protocol):
    name: str

    def rerank(self, query: str, candidates: list[Candidate]) -> list[float]: ...


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return np.zeros_like(x) if hi - lo < 1e-12 else (x - lo) / (hi - lo)


class ConvexCombinationReranker:
    def __init__(self, alpha: float = 0.5) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError("alpha must be within [0, 1]")
        self.alpha = alpha
        self.name = f"convex-combination(alpha={alpha})"

    def rerank(self, query: str, candidates: list[Candidate]) -> list[float]:
        if not candidates:
            return []
        dense = _minmax(np.array([c.dense_score for c in candidates], dtype=np.float64))
        lexical = _minmax(np.array([c.bm25_score for c in candidates], dtype=np.float64))
        return (self.alpha * dense + (1.0 - self.alpha) * lexical).tolist()
