from __future__ import annotations

import pytest
from pydantic import ValidationError

from tierwise_distill.gate import GateConfig, SplitScores, decide


def ev(cand: float, base: float = 0.0, prod: float | None = None, teacher: float | None = None, n: int = 20) -> SplitScores:
    return SplitScores(n=n, candidate=cand, base=base, production=prod, teacher=teacher)


def test_passes_when_beating_production_by_margin_without_guard_regression() -> None:
    r = decide(GateConfig(margin=0.05), ev(0.90, prod=0.80), ev(0.7, base=0.5, prod=0.7), candidate="c", production="p@v1")
    assert r.passed and all(r.checks.values())
    assert "production (p@v1) 0.800 + margin 0.050" in r.reasons[0]


def test_fails_below_margin_over_production_with_clear_reason() -> None:
    r = decide(GateConfig(margin=0.05), ev(0.83, prod=0.80), None, candidate="c", production="billing@v1")
    assert not r.passed and r.checks["beats_reference_by_margin"] is False
    assert r.reasons == ["eval exact_match 0.830 does not beat production (billing@v1) 0.800 by the margin 0.050 "
                         "(needs >= 0.850)"]


def test_without_production_the_base_model_is_the_reference() -> None:
    assert decide(GateConfig(margin=0.1), ev(0.2, base=0.05), None, candidate="c", production=None).passed
    r = decide(GateConfig(margin=0.1), ev(0.1, base=0.05), None, candidate="c", production=None)
    assert not r.passed and "base model 0.050" in r.reasons[0]


def test_fails_on_guard_regression_even_if_eval_improves() -> None:
    r = decide(GateConfig(margin=0.0, guard_tolerance=0.05), ev(1.0, prod=0.5), ev(0.6, base=0.9, prod=0.8),
               candidate="c", production="p")
    assert not r.passed and r.checks == {"enough_eval_examples": True, "beats_reference_by_margin": True,
                                         "no_guard_regression": False}
    assert "guard-set regression: exact_match 0.600 < production 0.800 - tolerance 0.050" in r.reasons[0]
    assert decide(GateConfig(margin=0.0, guard_tolerance=0.25), ev(1.0, prod=0.5), ev(0.6, base=0.9, prod=0.8),
                  candidate="c", production="p").passed


def test_fails_with_too_few_eval_examples() -> None:
    r = decide(GateConfig(min_eval_examples=30), ev(1.0, n=10), None, candidate="c", production=None)
    assert not r.passed and "only 10 eval examples" in r.reasons[0]


def test_teacher_agreement_is_optional_and_checked_when_set() -> None:
    cfg = GateConfig(margin=0.0, min_teacher_agreement=0.9)
    assert decide(cfg, ev(0.95, teacher=1.0), None, candidate="c", production=None).passed
    r = decide(cfg, ev(0.5, teacher=1.0), None, candidate="c", production=None)
    assert not r.passed and "0.50 of the teacher's" in r.reasons[0]
    assert not decide(cfg, ev(0.95), None, candidate="c", production=None).passed


def test_report_serialises_with_schema_and_config() -> None:
    j = decide(GateConfig(), ev(1.0), None, candidate="c", production=None).to_json()
    assert j["schema"] == "tierwise.gate-report/v1" and j["config"]["margin"] == 0.05 and j["passed"] is True


def test_fails_on_unknown_or_out_of_range_config() -> None:
    with pytest.raises(ValidationError):
        GateConfig(margn=0.1)
    with pytest.raises(ValidationError):
        GateConfig(margin=2)
