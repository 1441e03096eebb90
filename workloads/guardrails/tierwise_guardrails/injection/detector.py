"""Per-segment injection scoring with the committed logistic model and the heuristics."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tierwise_guardrails.findings import Finding
from tierwise_guardrails.injection.features import featurize
from tierwise_guardrails.injection.heuristics import heuristic_hits
from tierwise_guardrails.injection.segment import segments

MODEL_FILE = "injection-v1.npz"
DEFAULT_MODEL_PATH = Path(__file__).resolve().parents[1] / "model" / MODEL_FILE


@dataclass(frozen=True)
class InjectionResult:
    score: float  # max over segments and heuristics, in [0, 1]
    findings: list[Finding]  # one per segment at or above report_threshold, plus heuristic hits


class InjectionModel:
    """Logistic regression over hashed n-grams: ``sigmoid(w · x + b)``."""

    def __init__(self, weights: np.ndarray, bias: float, meta: dict) -> None:
        self.weights = weights.astype(np.float32)
        self.bias = float(bias)
        self.meta = meta

    @classmethod
    def load(cls, path: str | Path | None = None) -> "InjectionModel":
        return cls._load(Path(path) if path else DEFAULT_MODEL_PATH)

    @classmethod
    def _load(cls, path: Path) -> "InjectionModel":
        with np.load(path, allow_pickle=False) as z:
            return cls(z["weights"], float(z["bias"]), json.loads(str(z["meta"])))

    def score(self, text: str) -> float:
        idx, vals = featurize(text)
        z = self.bias + float(np.dot(self.weights[idx], vals)) if idx.size else self.bias
        return float(1.0 / (1.0 + np.exp(-z)))


class InjectionDetector:
    def __init__(self, model: InjectionModel | None = None, *, segment_chars: int = 600) -> None:
        self.model = model or InjectionModel.load()
        self.segment_chars = segment_chars

    def score_classifier(self, text: str) -> float:
        """Classifier only: max over the whole text (first 4 KiB) and every segment."""
        if not text.strip():
            return 0.0
        segs = segments(text, self.segment_chars)
        scores = [self.model.score(text)] if len(segs) > 1 else []
        scores += [self.model.score(text[s:e]) for s, e in segs]
        return max(scores) if scores else 0.0

    def detect(self, text: str, report_threshold: float = 0.5, *, channel: str = "user") -> InjectionResult:
        """``channel`` is accepted for the v2 interface; v1 scores every channel the same way."""
        findings: list[Finding] = []
        best = 0.0
        if not text.strip():
            return InjectionResult(0.0, findings)
        segs = segments(text, self.segment_chars)
        for s, e in segs:
            sc = self.model.score(text[s:e])
            best = max(best, sc)
            if sc >= report_threshold:
                findings.append(Finding("PROMPT_INJECTION", s, e, sc, "classifier:injection-v1"))
        if len(segs) > 1:
            whole = self.model.score(text)
            if whole > best:
                best = whole
                if whole >= report_threshold and not findings:
                    findings.append(Finding("PROMPT_INJECTION", segs[0][0], segs[-1][1], whole, "classifier:injection-v1"))
        for name, sc, s, e in heuristic_hits(text):
            best = max(best, sc)
            findings.append(Finding("PROMPT_INJECTION", s, e, sc, f"heuristic:{name}"))
        return InjectionResult(best, findings)
