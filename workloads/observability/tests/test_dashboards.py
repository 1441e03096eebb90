"""Every dashboard query parses (promtool) and names only metrics that exist."""

from __future__ import annotations

import json
from pathlib import Path

import promql_parser
import pytest
import yaml

from tierwise_observability import dashboards, rules
from tierwise_observability.environment import ObsEnvironment
from tierwise_observability.metrics_catalog import known_series

from obs_helpers import PKG, run_promtool

ENVS = ["dev", "prod"]


def metric_names(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            for m in node.matchers.matchers:
                if m.name == "__name__":
                    names.add(m.value)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def test_metric_name_extraction_sees_every_selector() -> None:
    e = 'sum(rate(a_total{x="1"}[5m])) / on (t) group_left () b:rec + histogram_quantile(0.9, c_bucket) or {__name__="d"}'
    assert metric_names(e) == {"a_total", "b:rec", "c_bucket", "d"}


@pytest.mark.parametrize("env_name", ENVS)
def test_every_query_parses_with_promtool(env_name: str, envs: dict[str, ObsEnvironment], promtool: str,
                                          tmp_path: Path) -> None:
    dash = json.loads((PKG / "generated" / env_name / "grafana-dashboard.json").read_text())
    queries = dashboards.panel_queries(dash)
    assert len(queries) > 25
    rule_file = {"groups": [{"name": "panels", "rules": [
        {"record": f"panel_{i}", "expr": dashboards.concrete(q)} for i, (_, q) in enumerate(queries)]}]}
    (tmp_path / "panels.yaml").write_text(yaml.safe_dump(rule_file))
    res = run_promtool(promtool, "check", "rules", "panels.yaml", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("env_name", ENVS)
def test_every_name_in_queries_and_rules_exists(env_name: str, envs: dict[str, ObsEnvironment]) -> None:
    r = rules.render_rules(envs[env_name])
    known = known_series() | set(rules.record_names(r))
    dash = dashboards.render_dashboard(envs[env_name])
    unknown = {(title, n) for title, q in dashboards.panel_queries(dash)
               for n in metric_names(dashboards.concrete(q)) if n not in known}
    unknown |= {(x.get("record") or x["alert"], n) for g in r["groups"] for x in g["rules"]
                for n in metric_names(x["expr"]) if n not in known}
    assert not unknown, f"queries name metrics nobody exports: {sorted(unknown)}"


def test_the_name_check_can_fail(envs: dict[str, ObsEnvironment]) -> None:
    known = known_series()
    assert "tierwise_router_cost_usd_total" in known
    assert metric_names("rate(tierwise_router_cost_total[5m])") - known == {"tierwise_router_cost_total"}


def test_dashboard_follows_the_environment(envs: dict[str, ObsEnvironment]) -> None:
    prod = dashboards.render_dashboard(envs["prod"])
    var = {v["name"]: v for v in prod["templating"]["list"]}
    assert var["team"]["query"] == "assistants,billing,research"
    assert var["model"]["query"].split(",") == [m.name for m in envs["prod"].models]
    stats = [p for p in prod["panels"] if p["type"] == "stat"]
    assert [p["title"] for p in stats] == [f"{t}: spend, last 30 days" for t in ("assistants", "billing", "research")]
    billing = stats[1]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in billing] == [None, 40000.0, 50000.0]
    ids = [p["id"] for p in prod["panels"]]
    assert len(ids) == len(set(ids))
    for p in prod["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24


def test_configmap_wraps_the_dashboard(envs: dict[str, ObsEnvironment]) -> None:
    cm = yaml.safe_load((PKG / "generated" / "dev" / "grafana-dashboard-configmap.yaml").read_text())
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    (body,) = cm["data"].values()
    assert json.loads(body) == json.loads((PKG / "generated" / "dev" / "grafana-dashboard.json").read_text())
