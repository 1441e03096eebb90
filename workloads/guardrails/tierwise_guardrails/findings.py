"""The one value type every detector returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Finding:
    """A detected span ``text[start:end]`` of entity ``type`` (PII) or ``PROMPT_INJECTION``."""

    type: str
    start: int
    end: int
    score: float
    detector: str

    def as_dict(self) -> dict:
        return {"type": self.type, "start": self.start, "end": self.end, "score": round(self.score, 4), "detector": self.detector}
