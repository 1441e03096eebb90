"""Static sentence embeddings distilled from all-MiniLM-L6-v2 (the Model2Vec recipe).

Every WordPiece token of MiniLM's vocabulary was run through the full model alone
(``[CLS] token [SEP]``, mean-pooled, see ``training/minilm.py``), the vectors reduced by PCA, and
weighted by a smooth inverse frequency measured on the training text. A text's embedding is the
weighted mean of its tokens' vectors, L2-normalised: a few microseconds per segment instead of a
transformer pass, with the meaning the transformer assigned to each token. numpy + ``tokenizers``.
"""

from __future__ import annotations

import numpy as np

MAX_TOKENS = 512


class StaticEmbedder:
    def __init__(self, vectors: np.ndarray, weights: np.ndarray, tokenizer_json: str) -> None:
        from tokenizers import Tokenizer

        if vectors.ndim != 2 or weights.shape != (vectors.shape[0],):
            raise ValueError(f"vectors must be (vocab, dim) and weights (vocab,), got {vectors.shape} and {weights.shape}")
        self.vectors = (vectors.astype(np.float32) * weights[:, None].astype(np.float32))
        self.dim = int(vectors.shape[1])
        self._tok = Tokenizer.from_str(tokenizer_json)
        self._tok.no_padding()
        self._tok.no_truncation()
        if self._tok.get_vocab_size() != vectors.shape[0]:
            raise ValueError(f"tokenizer has {self._tok.get_vocab_size()} tokens, vectors {vectors.shape[0]}")

    def token_ids(self, texts: list[str]) -> list[np.ndarray]:
        return [np.asarray(e.ids[:MAX_TOKENS], dtype=np.int64) for e in self._tok.encode_batch(texts, add_special_tokens=False)]

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, ids in enumerate(self.token_ids(texts)):
            if ids.size:
                v = self.vectors[ids].sum(0)
                n = float(np.linalg.norm(v))
                if n > 0:
                    out[i] = v / n
        return out
