"""Triage: decide Tier 1 (small self-hosted model + which LoRA adapter) or Tier 2 (frontier model).

A hashed bag of words/bigrams feeds two linear heads trained by ``train_triage.py``:
- ``hard``: P(the weak model gets this wrong) — the RouteLLM-style win-rate score r(q);
- ``domain``: a softmax over coarse domains, mapped to LoRA adapters by config.
Pure Python at run time (crc32 hashing + sparse dot products): no numpy import, no model server,
p50 well under 1 ms on one core (bench/routing.py measures it). The threshold on r(q) is read from
the score quantiles stored in the artifact for a target share of Tier-2 calls.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

_TOKEN = re.compile(r"[a-z]+|[0-9]+|[^\sa-z0-9]")
MAX_CHARS = 4000


def features(text: str, dim: int) -> dict[int, float]:
    """Hashed, L2-normalised binary unigram+bigram features, plus a few shape features."""
    t = text.lower()
    if len(t) > MAX_CHARS:  # long agentic context: the head and the tail carry the task
        t = t[: MAX_CHARS // 2] + " " + t[-MAX_CHARS // 2 :]
    toks = _TOKEN.findall(t)
    idx: set[int] = set()
    crc = zlib.crc32
    prev = "^"
    for tok in toks:
        if tok.isdigit():
            tok = "<num%d>" % min(len(tok), 4)
        idx.add(crc(tok.encode()) % dim)
        idx.add(crc((prev + " " + tok).encode()) % dim)
        prev = tok
    n_tok = len(toks)
    idx.add(crc(b"<len%d>" % min(int(math.log2(n_tok + 1)), 12)) % dim)
    idx.add(crc(b"<bias>") % dim)
    if not idx:
        return {}
    v = 1.0 / math.sqrt(len(idx))
    return {i: v for i in idx}


def threshold_from_quantiles(quantiles: list[float], tier2_share: float) -> float:
    """Interpolated (1 - share) percentile of the training scores (101 points, 0..100)."""
    if tier2_share <= 0:
        return math.inf
    if tier2_share >= 1:
        return -math.inf
    q = (1 - tier2_share) * 100
    lo = int(q)
    hi = min(lo + 1, 100)
    return quantiles[lo] + (quantiles[hi] - quantiles[lo]) * (q - lo)


def load_triage(path: str | Path | None = None):  # -> Triage | TriageV2
    """The packaged default (v2) or the artifact at ``path``, v1 or v2 by its ``format`` field."""
    if path is None:
        from .triage_v2 import TriageV2

        return TriageV2.load()
    art = json.loads(Path(path).read_text())
    if art.get("format") == 2:
        from .triage_v2 import TriageV2

        return TriageV2.load(path)
    return Triage(art)


@dataclass(frozen=True)
class Decision:
    tier: int
    score: float
    threshold: float
    domain: str
    adapter: str | None


def sparse_dot(w: list[float], b: float, f: dict[int, float]) -> float:
    s = b
    for i, v in f.items():
        s += w[i] * v
    return s


class TriageContract:
    """What v1 and v2 share: the domain head over hashed features, the quantile threshold, ``decide``.
    Subclasses set ``quantiles``, ``domains``, ``dom_w``, ``dom_b`` and implement ``score``."""

    quantiles: list[float]
    domains: list[str]
    dom_w: list[list[float]]
    dom_b: list[float]

    def score(self, text: str) -> tuple[float, str]:
        raise NotImplementedError

    def domain(self, f: dict[int, float]) -> str:
        zs = [sparse_dot(w, b, f) for w, b in zip(self.dom_w, self.dom_b)]
        return self.domains[zs.index(max(zs))]

    def threshold_for_share(self, tier2_share: float) -> float:
        """Score threshold so that about ``tier2_share`` of training prompts score at or above it."""
        return threshold_from_quantiles(self.quantiles, tier2_share)

    def decide(self, text: str, threshold: float, domain_adapters: dict[str, str],
               default_adapter: str | None = None, tier2_available: bool = True) -> Decision:
        score, domain = self.score(text)
        tier = 2 if (tier2_available and score >= threshold) else 1
        adapter = domain_adapters.get(domain, default_adapter) if tier == 1 else None
        return Decision(tier=tier, score=score, threshold=threshold, domain=domain, adapter=adapter)


class Triage(TriageContract):
    def __init__(self, artifact: dict[str, Any]):
        self.version: str = artifact["version"]
        self.dim: int = artifact["dim"]
        self.hard_w: list[float] = artifact["hard"]["weights"]
        self.hard_b: float = artifact["hard"]["bias"]
        self.domains: list[str] = artifact["domain"]["labels"]
        self.dom_w: list[list[float]] = artifact["domain"]["weights"]
        self.dom_b: list[float] = artifact["domain"]["bias"]
        self.quantiles: list[float] = artifact["hard"]["score_quantiles"]  # 0..100 percentiles
        if len(self.hard_w) != self.dim or any(len(w) != self.dim for w in self.dom_w):
            raise ValueError("triage artifact: weight length does not match dim")

    @classmethod
    def load(cls, path: str | Path | None = None) -> Triage:
        if path is None:
            text = resources.files("tierwise_router").joinpath("triage_model.json").read_text()
        else:
            text = Path(path).read_text()
        return cls(json.loads(text))

    async def ascore(self, text: str) -> tuple[float, str]:
        return self.score(text)  # tens of microseconds: cheaper inline than a thread hop

    def close(self) -> None:
        pass

    def score(self, text: str) -> tuple[float, str]:
        f = features(text, self.dim)
        z = sparse_dot(self.hard_w, self.hard_b, f)
        return 1.0 / (1.0 + math.exp(-z)), self.domain(f)
