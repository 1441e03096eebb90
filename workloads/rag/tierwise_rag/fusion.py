"""Reciprocal rank fusion (Cormack, Clarke & Buettcher, SIGIR 2009), with per-list weights:
``score(d) = sum_i w_i / (k + rank_i(d))`` over the lists that contain ``d`` (ranks from 1)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence


def rrf(ranked_lists: Sequence[tuple[float, Sequence[Hashable]]], k: float = 60.0) -> list[tuple[Hashable, float]]:
    scores: dict[Hashable, float] = {}
    for weight, keys in ranked_lists:
        if weight <= 0:
            continue
        for rank, key in enumerate(keys, start=1):
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
