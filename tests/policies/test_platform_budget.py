"""The platform budget end to end: declared in the environment file, synthesized as an account-wide AWS Budget,
read back from cdktf.out by TW-COST-005, and compared with the worst case the NodePool limits allow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tierwise.config import ConfigError, load_environment
from tierwise.policies.checks.cost.tw_cost_005_platform_budget import PlatformWorstCaseWithinBudget
from tierwise.policies.cost import cost_report, teams_from_index
from tierwise.policies.engine import FAIL, PASS, load_index, run_checks

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FIX = HERE / "fixtures" / "TW-COST-005"


def _budget_result(d: Path):
    return next(r for r in run_checks(load_index(d), [PlatformWorstCaseWithinBudget()]) if r.finding == "Platform::budget")


@pytest.mark.synth
@pytest.mark.parametrize("env", ["dev", "prod"])
def test_synthesized_platform_budget_is_account_wide_and_read_back(synthesized, env):
    declared = load_environment(REPO / "environments" / f"{env}.yaml").platform
    index = load_index(synthesized[env])
    [b] = [b for b in index.of_type("aws_budgets_budget") if b.body.get("tags", {}).get("tierwise.io/budget-scope") == "platform"]
    assert float(b.body["limit_amount"]) == declared.monthly_budget_usd
    assert b.body["time_unit"] == "MONTHLY" and b.body["budget_type"] == "COST"
    assert not b.body.get("cost_filter")  # every dollar of the account, not one cost center
    assert b.body["notification"] and all(n["subscriber_sns_topic_arns"] for n in b.body["notification"])
    # never mistaken for a team's budget
    assert b.address not in {t.budget_address for t in teams_from_index(index).values()}
    plat = cost_report(index).platform
    assert plat.budget_usd == declared.monthly_budget_usd
    # every Karpenter NodePool and node group is a fence in the worst case
    nodepools = {r.k8s_name for r in index.k8s("NodePool", "karpenter.sh")}
    assert {f.name for f in plat.fleets if f.kind.endswith("nodepool")} == nodepools
    assert [f.kind for f in plat.fleets].count("node-group") == len(index.of_type("aws_eks_node_group")) >= 1
    assert plat.total_usd is not None and plat.total_usd <= declared.monthly_budget_usd


def test_fixture_fleets_are_priced_at_their_limits():
    plat = cost_report(load_index(FIX)).platform
    usd = {f.name: f.monthly_usd for f in plat.fleets}
    # 1 x g6.48xlarge; 16 vCPUs x m5zn.large's $0.1652/2 per vCPU-hour; 3 x m7i.large; all x 730 h
    assert usd["l4"] == pytest.approx(13.3504 * 730)
    assert usd["agents"] == pytest.approx(16 * 0.1652 / 2 * 730)
    assert usd["system"] == pytest.approx(3 * 0.1008 * 730)
    assert usd["batch"] == float("inf")


def _without_unbounded_pool(tmp_path: Path, budget_usd: float) -> Path:
    d = tmp_path / "fx"
    shutil.copytree(FIX, d)
    t = d / "stacks" / "fx-tenancy" / "cdk.tf.json"
    doc = json.loads(t.read_text())
    del doc["resource"]["kubernetes_manifest"]["fail_cpu_unlimited"]
    t.write_text(json.dumps(doc))
    g = d / "stacks" / "fx-governance" / "cdk.tf.json"
    doc = json.loads(g.read_text())
    doc["resource"]["aws_budgets_budget"]["fail_platform_budget"]["limit_amount"] = f"{budget_usd:.2f}"
    g.write_text(json.dumps(doc))
    return d


@pytest.mark.parametrize("budget,status", [(11_000, PASS), (10_900, FAIL)])
def test_budget_is_compared_with_the_sum_of_all_fences(tmp_path, budget, status):
    # bounded fences: 9,745.79 + 964.78 + 220.75 = 10,931.32 a month
    r = _budget_result(_without_unbounded_pool(tmp_path, budget))
    assert r.status == status, r.message
    assert "$10,931" in r.message


def test_no_platform_budget_in_synth_output_fails(tmp_path):
    d = _without_unbounded_pool(tmp_path, 11_000)
    g = d / "stacks" / "fx-governance" / "cdk.tf.json"
    doc = json.loads(g.read_text())
    doc["resource"]["aws_budgets_budget"]["fail_platform_budget"]["tags"] = {"team": "shared"}
    g.write_text(json.dumps(doc))
    r = _budget_result(d)
    assert r.status == FAIL and "platform.monthly_budget_usd" in r.message


@pytest.mark.parametrize("edit,why", [
    (lambda d: d.pop("platform"), "platform"),
    (lambda d: d["platform"].__setitem__("monthly_budget_usd", 0), "monthly_budget_usd"),
    (lambda d: d["platform"].__setitem__("budget", 1), "budget"),
])
def test_platform_section_is_required_and_strict(tmp_path, edit, why):
    doc = yaml.safe_load((REPO / "environments" / "dev.yaml").read_text())
    edit(doc)
    f = tmp_path / "dev.yaml"
    f.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match=why):
        load_environment(f)
