"""BM25 over chunk texts with bm25s: lowercase word tokens, English stop words dropped, Snowball
stems. An index is immutable once built; fluid collections rebuild theirs after writes.

Stop words: ``en_plus`` (the default) is the 179-word English list of NLTK (shipped by bm25s as
``STOPWORDS_EN_PLUS``); ``en`` is Lucene's 33-word list. Questions are full of function words the
short list keeps ("what", "how", "why", "can", "does", "i", "my", "do", "which", ...); they match
answer text everywhere and drown the content words. On the Debian FAQ tuning half the long list
lifted BM25 nDCG@10 from 0.64 to 0.70 (bench/rag.py records the grid)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import bm25s
import numpy as np
import Stemmer
from typing import Literal

from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_EN_PLUS
from pydantic import BaseModel, ConfigDict, Field

_WORD_RE = re.compile(r"\w+", re.UNICODE)
StopWords = Literal["en_plus", "en", "none"]
_STOPLISTS: dict[str, frozenset[str]] = {"en_plus": frozenset(STOPWORDS_EN_PLUS), "en": frozenset(STOPWORDS_EN), "none": frozenset()}


class LexicalConfig(BaseModel):
    """How chunk text becomes BM25 terms and how they are scored (service-wide; applied when an
    index is built, so a change takes effect at the next start or write, without re-embedding)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    stopwords: StopWords = "en_plus"
    stem: bool = True
    k1: float = Field(1.5, gt=0.0, le=10.0)
    b: float = Field(0.75, ge=0.0, le=1.0)


class Analyzer:
    """Text → BM25 terms. One instance per index (PyStemmer objects are not thread-safe)."""

    def __init__(self, stopwords: StopWords = "en_plus", stem: bool = True) -> None:
        self._stop = _STOPLISTS[stopwords]
        self._stemmer = Stemmer.Stemmer("english") if stem else None

    def terms(self, text: str) -> list[str]:
        words = [w for w in _WORD_RE.findall(text.lower()) if w not in self._stop and len(w) < 64]
        return self._stemmer.stemWords(words) if self._stemmer else words


class BM25Index:
    """Scores every chunk of one snapshot; rows line up with the snapshot's chunk records."""

    def __init__(self, texts: Sequence[str], config: LexicalConfig | None = None) -> None:
        config = config or LexicalConfig()
        k1, b = config.k1, config.b
        self._analyzer = Analyzer(config.stopwords, config.stem)
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
