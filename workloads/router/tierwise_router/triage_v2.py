"""Triage v2: r(q) = P(the strong model beats the weak one on q, ties counted half), calibrated.

Same contract as v1 (``triage.py``): ``score``, ``decide``, ``threshold_for_share``, ``version``,
plus ``ascore`` (when the stack uses the embedding view, scoring runs on a worker thread: a MiniLM
forward pass is milliseconds of CPU and must not stall the event loop; without it the encoder is never
loaded and scoring is tens of microseconds, inline). Trained by ``train_triage.py``; artifact ``triage_v2.json``.

The score is a calibrated linear stack of views of the prompt (the artifact's ``stack.views`` lists
the ones it uses, with one weight each; the others are not computed):
- ``lexical``: multinomial logistic regression over v1's hashed unigram+bigram features → E[g], the
  expected gain g = strong_correct − weak_correct ∈ {−1, 0, 1} (routing to Tier 2 pays off only when
  the strong model is right *and* the weak one wrong);
- ``embedding``: the same over the all-MiniLM-L6-v2 sentence embedding (``triage_encoder.py``);
- ``weak_fails``: v1's label, P(the weak model is wrong), over the hashed features;
- ``format``: the same E[g] over a dozen prompt-shape features (``format_features``: multiple-choice
  layout, numeric/LaTeX answer options, digits, lengths). The MMLU labels score only the first output
  character, so the strong model is marked wrong on many numeric-answer questions (shared data
  README): a prompt's *format* predicts the labels, and a router may legitimately learn it.
r = sigmoid(bias + Σ w_v · view_v). Which views and how much of each (a standardised blend, the
weights chosen by leave-one-subject-group-out inside the training data) is ``train_triage.py``'s
choice, recorded in the artifact's ``selection``; the sigmoid is then fitted against the soft label
(1 + g) / 2 on out-of-fold scores, which is what makes r a probability (bench/routing.py plots its
reliability). The domain head (adapter choice) is v1's, carried in the same artifact. (A kNN view
over the training embeddings is a candidate in the selection, but the run-time triage does not implement it:
``train_triage.artifact_v2`` refuses a stack that uses it.)
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .triage import TriageContract, features, sparse_dot

ARTIFACT = "triage_v2.json"
VIEWS = ("lexical", "embedding", "weak_fails", "format")
SECTION = {"lexical": "lexical", "embedding": "embedding", "weak_fails": "weak_fails", "format": "format_head"}  # artifact keys
_CHOICE = re.compile(r"^[A-D]\. ")
# an answer option that is a number or a short formula (digits required; checked below)
_NUMERIC_CHOICE = re.compile(r"[\s\$\-\+\(\)\[\]\{\}\\\.,/=<>0-9\^_*%]*(frac|sqrt|pi|cdot|times|x|y|n|i|e)?"
                             r"[\s\$\-\+\(\)\[\]\{\}\\\.,/=<>0-9\^_*%a-z]{0,12}")
_INT = re.compile(r"\d+")


def format_features(text: str) -> list[float]:
    """Prompt-shape features (11): the multiple-choice layout and how numeric its answer options are.
    Pure Python, microseconds; ``train_triage.py`` standardises them with the training mean/sd."""
    lines = text.split("\n")
    choices = [ln[3:] for ln in lines if _CHOICE.match(ln)]
    question = "\n".join(ln for ln in lines if not _CHOICE.match(ln) and ln != "Answer:")
    digits = sum(c.isdigit() for c in text)
    numeric = [c for c in choices if _NUMERIC_CHOICE.fullmatch(c.strip()) and any(d.isdigit() for d in c)]
    low = text.lower()
    return [float(len(choices) == 4), len(numeric) / max(len(choices), 1),
            float(("\\" in text) or ("$" in text and "frac" in text)), math.log1p(digits),
            math.log1p(len(question.split())),
            math.log1p(sum(len(c) for c in choices) / len(choices)) if choices else 0.0,
            float("which of the following" in low), float("statement 1" in low),
            float(question.strip().endswith("?")), digits / max(len(text), 1), math.log1p(len(_INT.findall(question)))]


class TriageV2(TriageContract):
    def __init__(self, artifact: dict[str, Any], encoder: Any) -> None:
        if artifact.get("format") != 2:
            raise ValueError("triage artifact: not a v2 artifact (format != 2)")
        self.version: str = artifact["version"]
        st = artifact["stack"]
        self.stack_views: list[str] = st["views"]
        unknown = [v for v in self.stack_views if v not in VIEWS]
        missing = [v for v in self.stack_views if v in VIEWS and not artifact.get(SECTION[v])]
        if unknown or missing or len(st["weights"]) != len(self.stack_views):
            raise ValueError(f"triage artifact: stack views {self.stack_views} (unknown {unknown}, without "
                             f"parameters {missing}) do not match its {len(st['weights'])} weights")
        self.stack_w: list[float] = st["weights"]
        self.stack_b: float = st["bias"]
        enc = artifact.get("encoder")
        self.needs_encoder = "embedding" in self.stack_views
        if self.needs_encoder and encoder is None:
            raise ValueError("triage artifact: its stack uses the embedding view, but no encoder was given")
        if self.needs_encoder and getattr(encoder, "digest", enc["weights_sha256_16"]) != enc["weights_sha256_16"]:
            raise ValueError(f"triage artifact {self.version} was trained with encoder weights "
                             f"{enc['weights_sha256_16']}, but {encoder.digest} are installed")
        if self.needs_encoder and getattr(encoder, "precision", encoder_precision(artifact)) != encoder_precision(artifact):
            raise ValueError(f"triage artifact {self.version} was trained on {encoder_precision(artifact)} sentence "
                             f"embeddings, but the encoder given runs in {encoder.precision}")
        self.encoder = encoder if self.needs_encoder else None
        self.dim: int = artifact.get("features_dim") or artifact["lexical"]["dim"]
        lex = artifact.get("lexical") or {"weights": [], "bias": []}
        self.lex_w = [list(map(float, w)) for w in lex["weights"]]  # classes × dim, pure-Python sparse dots
        self.lex_b = [float(b) for b in lex["bias"]]
        emb = artifact.get("embedding") or {"weights": np.zeros((0, 0)), "bias": []}
        self.emb_w = np.asarray(emb["weights"], dtype=np.float32)  # classes × 384
        self.emb_b = np.asarray(emb["bias"], dtype=np.float32)
        self.classes: list[int] = artifact["classes"]
        self._plus, self._minus = self.classes.index(1), self.classes.index(-1)
        wf = artifact.get("weak_fails")
        self.wf_w: list[float] = list(map(float, wf["weights"])) if wf else []
        self.wf_b: float = float(wf["bias"]) if wf else 0.0
        fm = artifact.get("format_head")
        self.fmt_w = [list(map(float, w)) for w in fm["weights"]] if fm else []
        self.fmt_b = [float(b) for b in fm["bias"]] if fm else []
        self.fmt_mean: list[float] = fm["mean"] if fm else []
        self.fmt_sd: list[float] = fm["sd"] if fm else []
        self.quantiles: list[float] = artifact["score_quantiles"]
        dom = artifact["domain"]
        self.domains: list[str] = dom["labels"]
        self.dom_w: list[list[float]] = dom["weights"]
        self.dom_b: list[float] = dom["bias"]
        if any(len(w) != self.dim for w in self.lex_w + self.dom_w) or (self.wf_w and len(self.wf_w) != self.dim):
            raise ValueError("triage artifact: weight length does not match dim")
        self._pool: ThreadPoolExecutor | None = None
        compute = {"lexical": lambda text, f, e: self.lexical_gain(f), "embedding": lambda text, f, e: self.embedding_gain(e),
                   "weak_fails": lambda text, f, e: self.weak_fails(f), "format": lambda text, f, e: self.format_gain(text)}
        self._views = [compute[v] for v in self.stack_views]  # built once: view_values is on every `auto` call

    @classmethod
    def load(cls, path: str | Path | None = None, encoder: Any = None) -> TriageV2:
        text = (resources.files("tierwise_router").joinpath(ARTIFACT).read_text() if path is None
                else Path(path).read_text())
        art = json.loads(text)
        if encoder is None and "embedding" in art["stack"]["views"]:  # else the encoder is never loaded
            from .triage_encoder import SentenceEncoder

            encoder = SentenceEncoder(max_tokens=art["encoder"]["max_tokens"], precision=encoder_precision(art))
        return cls(art, encoder)

    # ------------------------------------------------------------------ the views
    def lexical_gain(self, f: dict[int, float]) -> float:
        return _expected_gain([sparse_dot(w, b, f) for w, b in zip(self.lex_w, self.lex_b)], self._plus, self._minus)

    def embedding_gain(self, e: np.ndarray) -> float:
        return _expected_gain((self.emb_w @ e + self.emb_b).tolist(), self._plus, self._minus)

    def weak_fails(self, f: dict[int, float]) -> float:
        return 1.0 / (1.0 + math.exp(-sparse_dot(self.wf_w, self.wf_b, f)))

    def format_gain(self, text: str) -> float:
        z = [(v - m) / s for v, m, s in zip(format_features(text), self.fmt_mean, self.fmt_sd)]
        return _expected_gain([b + sum(a * v for a, v in zip(w, z)) for w, b in zip(self.fmt_w, self.fmt_b)],
                              self._plus, self._minus)

    def view_values(self, text: str, e: np.ndarray | None, f: dict[int, float] | None = None) -> list[float]:
        f = features(text, self.dim) if f is None else f
        return [view(text, f, e) for view in self._views]

    def stack_score(self, views: list[float]) -> float:
        """r from the stack's view values (``view_values``)."""
        z = self.stack_b + sum(a * x for a, x in zip(self.stack_w, views))
        return 1.0 / (1.0 + math.exp(-z))

    def score_with(self, text: str, e: np.ndarray | None) -> tuple[float, str]:
        """r(q) and the domain, given the prompt's sentence embedding ``e`` (``score`` computes it; unused,
        and may be None, when the stack has no embedding view)."""
        f = features(text, self.dim)
        return self.stack_score(self.view_values(text, e, f)), self.domain(f)

    # ------------------------------------------------------------------ the triage contract
    def score(self, text: str) -> tuple[float, str]:
        return self.score_with(text, self.encoder.encode(text) if self.needs_encoder else None)

    async def ascore(self, text: str) -> tuple[float, str]:
        if not self.needs_encoder:
            return self.score(text)  # no forward pass: tens of microseconds, cheaper inline than a thread hop
        if self._pool is None:  # one worker: the encoder is single-threaded and the CPU is the limit
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="triage")
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.score, text)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def encoder_precision(artifact: dict[str, Any]) -> str:
    """The encoder precision an artifact was trained with (artifacts before int8 carry none: fp32)."""
    return (artifact.get("encoder") or {}).get("precision", "fp32")


def _expected_gain(z: list[float], plus: int, minus: int) -> float:
    m = max(z)
    ex = [math.exp(x - m) for x in z]
    return (ex[plus] - ex[minus]) / sum(ex)

