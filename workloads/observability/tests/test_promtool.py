"""`promtool test rules` for every rule.

The hand-written tests live in tests/promtool/*.test.yaml, written against the fixed environment
export tests/promtool/facts.json (team "assistants", 15000 USD/month, saturation at 16 waiting), in
the shape `tierwise export observability` writes and validated by the same schema. It is kept apart
from the checked-in exports of environments/*.yaml, which other people edit: the rule *code* is the
same, and the generated per-environment files are checked by `promtool check rules` and the
generated-equals-checked-in test. They
read `rules.yaml` = the rules rendered for it with annotations removed (so expectations state labels
and values, not prose), except annotations.test.yaml, which reads the full `rules-full.yaml`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tierwise_observability.environment import load
from tierwise_observability.rules import alert_names, record_names, render_rules
from tierwise_observability.yamlio import dump

from obs_helpers import PKG, run_promtool

TESTS = sorted((PKG / "tests" / "promtool").glob("*.test.yaml"))
RULES = render_rules(load(PKG / "tests" / "promtool" / "facts.json"))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("promtool")
    (d / "rules-full.yaml").write_text(dump(RULES))
    full = yaml.safe_load(dump(RULES))
    for g in full["groups"]:
        for r in g["rules"]:
            r.pop("annotations", None)
    (d / "rules.yaml").write_text(yaml.safe_dump(full, sort_keys=False))
    for t in TESTS:
        shutil.copy(t, d / t.name)
    return d


@pytest.mark.parametrize("test_file", TESTS, ids=[t.name for t in TESTS])
def test_promtool_unit_tests_pass(promtool: str, workdir: Path, test_file: Path) -> None:
    res = run_promtool(promtool, "test", "rules", test_file.name, cwd=workdir)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout


def test_promtool_rejects_a_wrong_expectation(promtool: str, workdir: Path) -> None:
    """The harness can fail: the budget test with one expected value changed must not pass."""
    text = (workdir / "budget.test.yaml").read_text().replace("value: 15000", "value: 15001", 1)
    (workdir / "broken.test.yaml").write_text(text)
    res = run_promtool(promtool, "test", "rules", "broken.test.yaml", cwd=workdir)
    assert res.returncode != 0
    assert "1.5001E+04" in res.stdout + res.stderr  # promtool prints failures on stderr


def _tests() -> list[dict]:
    out = []
    for t in TESTS:
        out += yaml.safe_load(t.read_text())["tests"]
    return out


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    rules = RULES
    firing, silent = set(), set()
    for t in _tests():
        for a in t.get("alert_rule_test", []):
            (firing if a.get("exp_alerts") else silent).add(a["alertname"])
    missing = [(n, "firing" if n not in firing else "silent") for n in alert_names(rules)
               if n not in firing or n not in silent]
    assert not missing, f"alerts without a firing and a not-firing promtool case: {missing}"


def test_every_recording_rule_has_an_expression_test() -> None:
    rules = RULES
    exprs = " ".join(e["expr"] for t in _tests() for e in t.get("promql_expr_test", []))
    untested = [r for r in record_names(rules) if r not in exprs]
    assert not untested, f"recording rules no promql_expr_test evaluates: {untested}"


def test_checked_in_rules_pass_promtool_check(promtool: str, root: Path) -> None:
    files = sorted((PKG / "generated").glob("*/prometheus-rules.yaml"))
    assert {f.parent.name for f in files} >= {"dev", "prod"}
    res = run_promtool(promtool, "check", "rules", *map(str, files))
    assert res.returncode == 0, res.stdout + res.stderr
