"""Second-stage reranking over the top of the fused list.

Two rerankers behind one protocol:

* :class:`CrossEncoderReranker` — a cross-encoder (query and chunk read together by one
  transformer, one relevance logit per pair) run by onnxruntime from a directory holding
  ``model.onnx`` and ``tokenizer.json`` (the layout of an ONNX export of a sentence-transformers
  ``CrossEncoder`` such as ms-marco-MiniLM-L-6-v2). Set ``rerank_model_dir``. No package reachable
  from these machines ships cross-encoder weights (checked: see the README), and nothing here
  downloads them: ``tierwise_rag.cross_encoder_training`` fine-tunes one from the packaged MiniLM
  and exports this layout (``bench/rag_cross_encoder.py train`` builds the shipped artifact;
  ``training.json`` beside the graph records its data, seed and hash).
* :class:`ConvexCombinationReranker` — the default without a model: a *score-level* convex combination of the two first-stage relevance scores over
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
from pathlib import Path
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
    needs_scores: bool  # True: give each candidate its exact BM25 and cosine scores (costs a vector fetch)

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
        self.needs_scores = True

    def rerank(self, query: str, candidates: list[Candidate]) -> list[float]:
        if not candidates:
            return []
        dense = _minmax(np.array([c.dense_score for c in candidates], dtype=np.float64))
        lexical = _minmax(np.array([c.bm25_score for c in candidates], dtype=np.float64))
        return (self.alpha * dense + (1.0 - self.alpha) * lexical).tolist()


class CrossEncoderReranker:
    """ONNX cross-encoder: ``score = logit(query, chunk)``, pairs truncated to ``max_tokens`` (the
    chunk side first), batched and padded to the longest pair of each batch. With ``fused_weight`` w > 0
    the final score is ``(1 - w) * minmax(logit) + w * minmax(fused score)`` over the candidates: the
    first stage's order keeps a say (``bench/rag_cross_encoder.py`` measures both)."""

    def __init__(self, model_dir: Path, *, threads: int = 1, max_tokens: int = 512, batch_size: int = 16, fused_weight: float = 0.0) -> None:
        from tokenizers import Tokenizer

        from .embedding import ort_session

        if not 0.0 <= fused_weight < 1.0:
            raise ValueError(f"fused_weight must be within [0, 1), got {fused_weight} (1 would ignore the cross-encoder)")
        self.fused_weight = fused_weight
        model, tok = model_dir / "model.onnx", model_dir / "tokenizer.json"
        missing = [p.name for p in (model, tok) if not p.is_file()]
        if missing:
            raise ValueError(f"rerank_model_dir {str(model_dir)!r} lacks {', '.join(missing)}: it needs an ONNX cross-encoder "
                             "(model.onnx with input_ids/attention_mask[/token_type_ids] -> logits) and its tokenizer.json")
        self._tok = Tokenizer.from_file(str(tok))
        self._tok.no_padding()
        self._tok.enable_truncation(max_tokens, strategy="only_second")
        self._session = ort_session(model, threads)
        self._inputs = {i.name for i in self._session.get_inputs()}
        if not {"input_ids", "attention_mask"} <= self._inputs:
            raise ValueError(f"{model} takes inputs {sorted(self._inputs)}; a cross-encoder needs input_ids and attention_mask")
        self.batch_size = batch_size
        self.name = f"cross-encoder({model_dir.name})" + (f"+fused({fused_weight})" if fused_weight else "")
        self.needs_scores = False

    def scores(self, query: str, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0, dtype=np.float32)
        encodings = self._tok.encode_batch([(query, t) for t in texts])
        out = np.zeros(len(texts), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            types = np.zeros_like(ids)
            for r, i in enumerate(rows):
                enc = encodings[i]
                ids[r, : len(enc.ids)] = enc.ids
                mask[r, : len(enc.ids)] = 1
                types[r, : len(enc.type_ids)] = enc.type_ids
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feed["token_type_ids"] = types
            (logits,) = self._session.run(None, feed)
            out[rows] = np.asarray(logits, dtype=np.float32).reshape(len(rows), -1)[:, 0]
        return out

    def rerank(self, query: str, candidates: list[Candidate]) -> list[float]:
        logits = self.scores(query, [c.text for c in candidates]).astype(np.float64)
        if not self.fused_weight or not candidates:
            return logits.tolist()
        fused = np.array([c.fused_score for c in candidates], dtype=np.float64)
        return ((1.0 - self.fused_weight) * _minmax(logits) + self.fused_weight * _minmax(fused)).tolist()
