"""An environment *file* edited to break a guarantee is caught by the gate on its synthesized output —
the path a pull request actually takes (YAML → synth → policy), not a hand-edited cdk.tf.json."""

from __future__ import annotations

import json
import shutil
import subprocess
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


def _blocking(out: Path) -> dict[str, str]:
    """Blocking findings as {CHECK[finding]: message}."""
    return {r.full_id: r.message for r in gate.run_gate(out, use_checkov=False).blocking()}


def test_shipped_dev_passes_the_tierwise_checks(synthesized):
    assert _failing(synthesized["dev"]) == set()


def test_budget_below_worst_case_fails_tw_cost_002(tmp_path):
    # dev's assistants team can reach 8 A100s + 4 L4s: a $5,000 budget cannot cover that.
    out = _synth_edited(tmp_path, lambda d: d["teams"][0].__setitem__("monthly_budget_usd", 5000))
    assert "TW-COST-002" in _failing(out)


def test_gpu_pool_limit_raised_200x_fails_the_platform_budget_and_shows_in_cost(tmp_path, tierwise_exe):
    # The NodePool limit is the fence: x200 on mig-a100 (8 -> 1,600 A100s) leaves every team's quota and budget as it
    # was (TW-COST-002 still passes), but lets Karpenter buy 200 p4d.24xlarge: the platform budget must catch it.
    def raise_limit(d):
        d["gpu_pools"][0]["gpu_limit"] *= 200
    out = _synth_edited(tmp_path, raise_limit)
    blocking = _blocking(out)
    assert "TW-COST-002" not in _failing(out)
    msg = blocking["TW-COST-005[Platform::budget]"]
    assert "mig-a100" in msg and "200 x p4d.24xlarge" in msg and "$25,000" in msg, msg
    # `tierwise cost` shows the limit-bound worst case, not just the (unchanged) team attribution
    res = subprocess.run([tierwise_exe, "cost", "-d", str(out), "--env", str(tmp_path / "dev.yaml"), "-f", "json"],
                         capture_output=True, text=True, timeout=300, cwd="/tmp")
    assert res.returncode == 0, res.stderr
    plat = json.loads(res.stdout)["platform"]
    a100 = next(f for f in plat["fleets"] if f["name"] == "mig-a100")
    assert a100["worst_fleet"] == "200 x p4d.24xlarge" and a100["limit"].startswith("1600 GPUs")
    assert plat["total_usd"] > 100 * plat["budget_usd"] and plat["budget_usd"] == 25000
    text = subprocess.run([tierwise_exe, "cost", "-d", str(out)], capture_output=True, text=True, timeout=300, cwd="/tmp").stdout
    assert "platform worst case" in text and "OVER" in text


def test_serving_namespace_without_default_deny_fails_tw_net_003(synthesized, tmp_path):
    # vLLM, the router, RAG and guardrails run in the shared serving namespace: deleting its default-deny from the
    # synthesized dev (what a bad construct change would emit) must block, although no team owns the namespace.
    out = tmp_path / "dev"
    shutil.copytree(synthesized["dev"], out)
    removed = 0
    for f in (out / "stacks").glob("*/cdk.tf.json"):
        doc = json.loads(f.read_text())
        manifests = doc.get("resource", {}).get("kubernetes_manifest", {})
        for name in [n for n, b in manifests.items()
                     if b["manifest"]["kind"] == "NetworkPolicy" and b["manifest"]["metadata"]["name"] == "default-deny"
                     and b["manifest"]["metadata"]["namespace"] == "tierwise-serving"]:
            del manifests[name]
            removed += 1
        f.write_text(json.dumps(doc))
    assert removed == 1
    msg = _blocking(out)["TW-NET-003[Namespace::tierwise-serving]"]
    assert "Deployment/" in msg and "Ingress" in msg and "Egress" in msg, msg
    assert "TW-NET-003[Namespace::tierwise-serving]" not in _blocking(synthesized["dev"])
