"""An environment *file* edited to break a guarantee is caught by the gate on its synthesized output —
the path a pull request actually takes (YAML → synth → policy), not a hand-edited cdk.tf.json."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tierwise.app import synth
from tierwise.config import load_environment
from tierwise.policies import gate

pytestmark = pytest.mark.synth
REPO = Path(__file__).resolve().parents[2]


def _synth_edited(tmp_path: Path, edit) -> Path:
    doc = yaml.safe_load((REPO / "environments" / "dev.yaml").read_text())
    edit(doc)
    f = tmp_path / "dev.yaml"
    f.write_text(yaml.safe_dump(doc))
    out = tmp_path / "out"
    synth(load_environment(f), out)
    return out


def _failing(out: Path) -> set[str]:
    report = gate.run_gate(out, use_checkov=False)
    return {r.check_id for r in report.blocking()}


def test_shipped_dev_passes_the_tierwise_checks(synthesized):
    assert _failing(synthesized["dev"]) == set()


def test_budget_below_worst_case_fails_tw_cost_002(tmp_path):
    # dev's assistants team can reach 8 A100s + 4 L4s: a $5,000 budget cannot cover that.
    out = _synth_edited(tmp_path, lambda d: d["teams"][0].__setitem__("monthly_budget_usd", 5000))
    assert "TW-COST-002" in _failing(out)
