"""Evaluation gate: the promotion decision from scores, with reasons a human can act on.

Scoring (generation with the candidate, base and production adapters) lives in ``evaluate.py``
(needs torch); this module only decides, so the rule is easy to read and to unit-test:

1. enough eval examples (``min_eval_examples``);
2. the candidate beats the current production adapter by ``margin`` on the eval split — or, with no
   production adapter yet, the base model by ``margin``;
3. on the guard set the candidate does not fall more than ``guard_tolerance`` below the reference
   (production if there is one, else base);
4. optionally, the candidate reaches ``min_teacher_agreement`` of the teacher's score where the
   teacher's answers were recorded with a reference.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class GateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metric: str = "exact_match"
    margin: float = Field(0.05, ge=0.0, le=1.0)
    guard_tolerance: float = Field(0.0, ge=0.0, le=1.0)
    min_eval_examples: int = Field(8, ge=1)
    min_teacher_agreement: float | None = Field(None, ge=0.0, le=1.0)


class SplitScores(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int
    candidate: float
    base: float
    production: float | None = None
    teacher: float | None = None  # score of the recorded teacher answers against the references


class GateReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_: str = Field("tierwise.gate-report/v1", alias="schema")
    passed: bool
    reasons: list[str]
    checks: dict[str, bool]
    config: GateConfig
    eval: SplitScores
    guard: SplitScores | None
    candidate: str
    production: str | None
    decided_at: str
    details: dict[str, Any] = Field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def decide(cfg: GateConfig, eval_scores: SplitScores, guard_scores: SplitScores | None, *,
           candidate: str, production: str | None, details: dict[str, Any] | None = None) -> GateReport:
    checks: dict[str, bool] = {}
    reasons: list[str] = []
    m = cfg.metric

    checks["enough_eval_examples"] = eval_scores.n >= cfg.min_eval_examples
    if not checks["enough_eval_examples"]:
        reasons.append(f"only {eval_scores.n} eval examples (< min_eval_examples {cfg.min_eval_examples})")

    if production is not None and eval_scores.production is not None:
        ref_name, ref = f"production ({production})", eval_scores.production
    else:
        ref_name, ref = "base model", eval_scores.base
    need = ref + cfg.margin
    checks["beats_reference_by_margin"] = eval_scores.candidate >= need - 1e-12
    if not checks["beats_reference_by_margin"]:
        reasons.append(f"eval {m} {eval_scores.candidate:.3f} does not beat {ref_name} {ref:.3f} "
                       f"by the margin {cfg.margin:.3f} (needs >= {need:.3f})")

    if guard_scores is not None:
        gref_name, gref = (("production", guard_scores.production) if guard_scores.production is not None
                           else ("base model", guard_scores.base))
        floor = gref - cfg.guard_tolerance
        checks["no_guard_regression"] = guard_scores.candidate >= floor - 1e-12
        if not checks["no_guard_regression"]:
            reasons.append(f"guard-set regression: {m} {guard_scores.candidate:.3f} < {gref_name} {gref:.3f} "
                           f"- tolerance {cfg.guard_tolerance:.3f}")

    if cfg.min_teacher_agreement is not None:
        if eval_scores.teacher is None or eval_scores.teacher <= 0:
            checks["teacher_agreement"] = False
            reasons.append("min_teacher_agreement is set but no teacher score was recorded on the eval split")
        else:
            ratio = eval_scores.candidate / eval_scores.teacher
            checks["teacher_agreement"] = ratio >= cfg.min_teacher_agreement
            if not checks["teacher_agreement"]:
                reasons.append(f"candidate reaches {ratio:.2f} of the teacher's {m} "
                               f"(< min_teacher_agreement {cfg.min_teacher_agreement:.2f})")

    passed = all(checks.values())
    if passed:
        reasons.append(f"eval {m} {eval_scores.candidate:.3f} >= {ref_name} {ref:.3f} + margin {cfg.margin:.3f}"
                       + ("; no guard-set regression" if guard_scores is not None else ""))
    return GateReport(passed=passed, reasons=reasons, checks=checks, config=cfg, eval=eval_scores,
                      guard=guard_scores, candidate=candidate, production=production,
                      decided_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                      details=details or {})
