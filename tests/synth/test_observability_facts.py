"""The observability export agrees with what the platform deploys: the router's saturation threshold and
its teams' budgets (serving stack's router ConfigMap) are the ones the generated rules and dashboards use
(`workloads/observability/facts/<env>.json`, written by `tierwise export observability`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.synth
REPO = Path(__file__).resolve().parents[2]
ENVS = ("dev", "prod")


def _router_config(stack: dict) -> dict:
    [cm] = [r["manifest"] for r in stack["resource"]["kubernetes_manifest"].values()
            if r["manifest"]["kind"] == "ConfigMap" and r["manifest"]["metadata"]["name"] == "router"]
    return json.loads(cm["data"]["router.base.json"])


@pytest.mark.parametrize("env_name", ENVS)
def test_export_matches_the_router_config_the_platform_deploys(synthesized_stacks, env_name: str) -> None:
    facts = json.loads((REPO / "workloads" / "observability" / "facts" / f"{env_name}.json").read_text())
    router = _router_config(synthesized_stacks[env_name][f"{env_name}-serving"])
    assert router["routing"]["saturation_waiting"] == facts["router_saturation_waiting"]
    budgets = {t["name"]: float(t["budgets"]["usd_per_month"]) for t in router["teams"] if ":agent:" not in t["name"]}
    assert budgets == {t["name"]: t["monthly_budget_usd"] for t in facts["teams"]}
    assert {m["name"] for m in router["models"] if m["tier"] == 1} == {m["name"] for m in facts["models"]}
