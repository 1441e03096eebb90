"""Triage v2: r(q) = P(the strong model beats the weak one on q, ties counted half), calibrated.

Same contract as v1 (``triage.py``): ``score``, ``decide``, ``threshold_for_share``, ``version``,
plus ``ascore`` (the scoring runs on a worker thread: a MiniLM forward pass is milliseconds of CPU and
must not stall the event loop). Trained by ``train_triage.py``; artifact ``triage_v2.json``.

The score is a calibrated stack of two views of the prompt, each predicting the gain
g = strong_correct − weak_correct ∈ {−1, 0, 1} (routing to Tier 2 pays off only when the strong model
is right *and* the weak one wrong; v1 predicted "weak fails", which also sends the questions both
models fail to Tier 2, and MMLU part 1 has many: v1 was worse than random there):
- ``lexical``: multinomial logistic regression over v1's hashed unigram+bigram features → E[g];
- ``embedding``: multinomial logistic regression over the all-MiniLM-L6-v2 sentence embedding → E[g]
  (``triage_encoder.py``);
then r = sigmoid(a·E_lex + b·E_emb + c), fitted on out-of-fold predictions against the
soft label (1 + g) / 2, which is what makes r a probability (bench/routing.py plots its reliability).
The domain head (adapter choice) is v1's, carried in the same artifact. (A kNN view over the
training embeddings was tried: it added nothing on any held-out set and 2.3 MB to the artifact.)
"""

from __future__ import annotations

import asyncio
import json
import math
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .triage import TriageContract, features, sparse_dot

ARTIFACT = "triage_v2.json"


class TriageV2(TriageContract):
    def __init__(self, artifact: dict[str, Any], encoder: Any) -> None:
        if artifact.get("format") != 2:
            raise ValueError("triage artifact: not a v2 artifact (format != 2)")
        self.version: str = artifact["version"]
        enc = artifact["encoder"]
        if getattr(encoder, "digest", enc["weights_sha256_16"]) != enc["weights_sha256_16"]:
            raise ValueError(f"triage artifact {self.version} was trained with encoder weights "
                             f"{enc['weights_sha256_16']}, but {encoder.digest} are installed")
        self.encoder = encoder
        lex = artifact["lexical"]
        self.dim: int = lex["dim"]
        self.lex_w = [list(map(float, w)) for w in lex["weights"]]  # classes × dim, pure-Python sparse dots
        self.lex_b = [float(b) for b in lex["bias"]]
        emb = artifact["embedding"]
        self.emb_w = np.asarray(emb["weights"], dtype=np.float32)  # classes × 384
        self.emb_b = np.asarray(emb["bias"], dtype=np.float32)
        self.classes: list[int] = artifact["classes"]
        self._plus, self._minus = self.classes.index(1), self.classes.index(-1)
        st = artifact["stack"]
        self.stack_w: list[float] = st["weights"]
        self.stack_b: float = st["bias"]
        self.quantiles: list[float] = artifact["score_quantiles"]
        dom = artifact["domain"]
        self.domains: list[str] = dom["labels"]
        self.dom_w: list[list[float]] = dom["weights"]
        self.dom_b: list[float] = dom["bias"]
        if any(len(w) != self.dim for w in self.lex_w + self.dom_w):
            raise ValueError("triage artifact: weight length does not match dim")
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def load(cls, path: str | Path | None = None, encoder: Any = None) -> TriageV2:
        text = (resources.files("tierwise_router").joinpath(ARTIFACT).read_text() if path is None
                else Path(path).read_text())
        art = json.loads(text)
        if encoder is None:
            from .triage_encoder import SentenceEncoder

            encoder = SentenceEncoder(max_tokens=art["encoder"]["max_tokens"])
        return cls(art, encoder)

    # ------------------------------------------------------------------ the two views
    def lexical_gain(self, f: dict[int, float]) -> float:
        return _expected_gain([sparse_dot(w, b, f) for w, b in zip(self.lex_w, self.lex_b)], self._plus, self._minus)

    def embedding_gain(self, e: np.ndarray) -> float:
        return _expected_gain((self.emb_w @ e + self.emb_b).tolist(), self._plus, self._minus)

    def score_with(self, text: str, e: np.ndarray) -> tuple[float, str]:
        """r(q) and the domain, given the prompt's sentence embedding ``e`` (``score`` computes it)."""
        f = features(text, self.dim)
        v = (self.lexical_gain(f), self.embedding_gain(e))
        z = self.stack_b + sum(a * x for a, x in zip(self.stack_w, v))
        return 1.0 / (1.0 + math.exp(-z)), self.domain(f)

    # ------------------------------------------------------------------ the triage contract
    def score(self, text: str) -> tuple[float, str]:
        return self.score_with(text, self.encoder.encode(text))

    async def ascore(self, text: str) -> tuple[float, str]:
        if self._pool is None:  # one worker: the encoder is single-threaded and the CPU is the limit
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="triage")
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.score, text)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _expected_gain(z: list[float], plus: int, minus: int) -> float:
    m = max(z)
    ex = [math.exp(x - m) for x in z]
    return (ex[plus] - ex[minus]) / sum(ex)

