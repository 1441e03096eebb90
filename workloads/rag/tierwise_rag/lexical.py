"""BM25 over chunk texts with bm25s: lowercase word tokens, English stop words dropped, Snowball
stems. An index is immutable once built; fluid collections rebuild theirs after writes."""

from __future__ import annotations

import re
from collections.abc import Sequence

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

_WORD_RE = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset(STOPWORDS_EN)


class Analyzer:
    """Text → BM25 terms. One instance per index (PyStemmer objects are not thread-safe)."""

    def __init__(self) -> None:
        self._stemmer = Stemmer.Stemmer("english")

    def terms(self, text: str) -> list[str]:
        words = [w for w in _WORD_RE.findall(text.lower()) if w not in _STOP and len(w) < 64]
        return self._stemmer.stemWords(words)


class BM25Index:
    """Scores every chunk of one snapshot; rows line up with the snapshot's chunk records."""

    def __init__(self, texts: Sequence[str], *, k1: float = 1.2, b: float = 0.75) -> None:
        self._analyzer = Analyzer()
        self.size = len(texts)
        self._bm25: bm25s.BM25 | None = None
        if texts:
            corpus = [self._analyzer.terms(t) or ["\u2205"] for t in texts]
            bm25 = bm25s.BM25(k1=k1, b=b)
            bm25.index(corpus, show_progress=False)
            self._bm25 = bm25
            self._vocab: dict[str, int] = bm25.vocab_dict

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every row (0 where no query term occurs)."""
        if self._bm25 is None:
            return np.zeros(0, dtype=np.float32)
        ids = [self._vocab[t] for t in self._analyzer.terms(query) if t in self._vocab]
        if not ids:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores_from_ids(ids), dtype=np.float32)

    def top(self, query: str, k: int, mask: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Rows with a positive score, best first, at most ``k``; ``mask`` (bool per row) filters."""
        scores = self.scores(query)
        if scores.size == 0:
            return []
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        k = min(k, int(np.count_nonzero(scores > 0)))
        if k <= 0:
            return []
        idx = np.argpartition(-scores, k - 1)[:k]
        idx = idx[np.argsort(-scores[idx], kind="stable")]
        return [(int(i), float(scores[i])) for i in idx]
