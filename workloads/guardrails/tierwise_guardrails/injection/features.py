"""Deterministic hashed n-gram features, numpy only (the same code runs in training and serving).

Word 1–2-grams are hashed with CRC-32; character 3–5-grams over the lower-cased UTF-8 bytes with
a vectorised polynomial hash. Values are sublinear term frequencies, L2-normalised.
"""

from __future__ import annotations

import re
import zlib

import numpy as np

N_FEATURES = 1 << 18
_WORD = re.compile(r"[a-z0-9']+")
_MASK32 = np.uint64(0xFFFFFFFF)
_PRIME = np.uint64(16777619)
MAX_CHARS = 4096  # longer inputs are scored per segment; one vector never covers more than this


def _char_ngrams(data: np.ndarray, n: int) -> np.ndarray:
    if data.size < n:
        return np.empty(0, dtype=np.uint64)
    h = np.full(data.size - n + 1, np.uint64(2166136261 + n), dtype=np.uint64)
    for k in range(n):
        h = ((h ^ data[k : data.size - n + 1 + k]) * _PRIME) & _MASK32
    return h


def featurize(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (indices, values): a sparse, L2-normalised feature vector of ``text``."""
    low = " ".join(text.lower().split())[:MAX_CHARS]
    data = np.frombuffer(low.encode("utf-8", "ignore"), dtype=np.uint8).astype(np.uint64)
    parts = [_char_ngrams(data, n) for n in (3, 4, 5)]
    words = _WORD.findall(low)
    grams = words + [a + " " + b for a, b in zip(words, words[1:])]
    if grams:
        parts.append(np.fromiter((zlib.crc32(g.encode()) ^ 0x9E3779B9 for g in grams), dtype=np.uint64, count=len(grams)))
    if not any(p.size for p in parts):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    idx = (np.concatenate(parts) % np.uint64(N_FEATURES)).astype(np.int64)
    uniq, counts = np.unique(idx, return_counts=True)
    vals = (1.0 + np.log(counts)).astype(np.float32)
    vals /= np.float32(np.linalg.norm(vals))
    return uniq, vals
