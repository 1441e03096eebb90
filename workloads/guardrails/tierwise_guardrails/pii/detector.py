"""Runs the pattern recognizers and NER, then resolves overlaps into disjoint spans."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tierwise_guardrails.findings import Finding
from tierwise_guardrails.pii.recognizers import PATTERN_RECOGNIZERS, run_patterns

NER_ENTITIES = frozenset({"PERSON", "LOCATION"})
ALL_ENTITIES = frozenset(PATTERN_RECOGNIZERS) | NER_ENTITIES


def resolve_overlaps(findings: Iterable[Finding]) -> list[Finding]:
    """Keep a disjoint set of spans: validated patterns beat NER, higher scores beat lower, longer
    spans beat shorter. Returned sorted by start."""
    ranked = sorted(
        findings,
        key=lambda f: (f.detector.startswith("spacy"), -f.score, -(f.end - f.start), f.start),
    )
    kept: list[Finding] = []
    for f in ranked:
        if f.end <= f.start:
            continue
        if all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    return sorted(kept, key=lambda f: f.start)


class PiiDetector:
    """``detect(text, entities)`` → disjoint findings. Builds (and loads NER) once; reuse it."""

    def __init__(
        self,
        *,
        enable_ner: bool = True,
        spacy_model_path: str | Path | None = None,
        ner_engine: str = "numpy",
        ner_gate: bool = False,
    ) -> None:
        self._ner = None
        if enable_ner:
            from tierwise_guardrails.pii.ner import NerDetector

            self._ner = NerDetector(spacy_model_path, engine=ner_engine, gate=ner_gate)

    @property
    def ner_enabled(self) -> bool:
        return self._ner is not None

    def detect(self, text: str, entities: Iterable[str] = ALL_ENTITIES, min_score: float = 0.0) -> list[Finding]:
        wanted = set(entities)
        found = run_patterns(text, wanted)
        if self._ner is not None and wanted & NER_ENTITIES:
            found.extend(f for f in self._ner(text) if f.type in wanted)
        kept = [f for f in resolve_overlaps(found) if f.score >= min_score]
        return propagate(text, kept)


def propagate(text: str, findings: list[Finding]) -> list[Finding]:
    """A value that is PII in one place is PII everywhere: add every other exact occurrence of a
    detected value (a repeat may have been missed, e.g. inside a longer digit run), so redaction
    never leaves a detected value behind."""
    if not findings:
        return findings
    extra: list[Finding] = []
    for f in findings:
        value = text[f.start : f.end]
        if len(value) < 4:
            continue
        pos = text.find(value)
        while pos != -1:
            if pos != f.start:
                extra.append(Finding(f.type, pos, pos + len(value), f.score, f.detector + "+repeat"))
            pos = text.find(value, pos + 1)
    if not extra:
        return findings
    # Longest spans first: a repeat of a long value beats a shorter overlapping span there.
    merged = findings + extra
    kept: list[Finding] = []
    for f in sorted(merged, key=lambda f: (-(f.end - f.start), f.start)):
        if all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    return sorted(kept, key=lambda f: f.start)
