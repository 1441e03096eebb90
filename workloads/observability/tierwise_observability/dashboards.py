"""Grafana dashboards as code, generated per environment.

One dashboard per environment (`tierwise-<env>`): template variables list the environment's teams
and models (so the dropdowns match what the platform deployed), and each team gets a budget panel
whose thresholds are its monthly budget. Queries use only metric names from `metrics_catalog` or
recording rules from `rules.py`; the tests parse every query (promtool) and check every name.
Deployed as a ConfigMap labelled `grafana_dashboard: "1"` (the Grafana chart's dashboard sidecar).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .environment import ObsEnvironment

DS = {"type": "prometheus", "uid": "${datasource}"}
#: Values substituted for template variables when a query is checked outside Grafana.
VARIABLE_SAMPLES = {"$team": "x", "$model": "x", "$__rate_interval": "5m", "${datasource}": "prom"}


@dataclass(frozen=True)
class Panel:
    title: str
    exprs: tuple[tuple[str, str], ...]  # (PromQL, legend)
    unit: str = "short"
    kind: str = "timeseries"
    description: str = ""
    thresholds: tuple[tuple[float, str], ...] = ()
    width: int = 8


def _panels(env: ObsEnvironment) -> list[tuple[str, list[Panel]]]:
    T = '{team=~"$team"}'
    M = '{model_name=~"$model"}'
    rows: list[tuple[str, list[Panel]]] = []
    cost = [
        Panel("Spend rate by team", ((f"sum by (team) (rate(tierwise_router_cost_usd_total{T}[$__rate_interval])) * 3600",
                                      "{{team}}"),), unit="currencyUSD",
              description="Router ledger cost (Bedrock at list price, Tier 1 at its amortised token price), USD/hour."),
        Panel("Budget burn rate (1h / 5m)", (('team:tierwise_budget_burn:rate1h{team=~"$team"}', "{{team}} 1h"),
                                             ('team:tierwise_budget_burn:rate5m{team=~"$team"}', "{{team}} 5m")),
              description="1 = exactly the monthly budget in 30 days. TeamBudgetBurnFast pages above 14.4 (1h and 5m).",
              thresholds=((0, "green"), (1, "yellow"), (14.4, "red"))),
        Panel("Tokens/s by team and tier", (('team_tier:tierwise_router_tokens:rate5m{team=~"$team"}',
                                             "{{team}} tier{{tier}} {{direction}}"),)),
        Panel("Budget and rate-limit refusals", ((f"sum by (team, reason) (rate(tierwise_router_rejections_total{T}"
                                                  "[$__rate_interval]))", "{{team}} {{reason}}"),), unit="reqps"),
    ]
    for t in env.teams:
        cost.append(Panel(
            f"{t.name}: spend, last 30 days", ((f'sum(increase(tierwise_router_cost_usd_total{{team="{t.name}"}}[30d]))',
                                                t.name),),
            unit="currencyUSD", kind="stat", width=4,
            description=f"Monthly budget {t.monthly_budget_usd:,.0f} USD (cost center {t.cost_center or '-'}).",
            thresholds=((0, "green"), (0.8 * t.monthly_budget_usd, "yellow"), (t.monthly_budget_usd, "red"))))
    rows.append(("Cost and budgets", cost))
    rows.append(("Routing", [
        Panel("Requests by tier", ((f"sum by (tier) (rate(tierwise_router_requests_total{T}[$__rate_interval]))",
                                    "tier {{tier}}"),), unit="reqps"),
        Panel("Tier-2 fallbacks by reason", (("reason:tierwise_router_fallbacks:rate5m", "{{reason}}"),), unit="reqps"),
        Panel("Fallback and error ratio", (("tierwise:router_fallback:ratio_rate5m", "fallback"),
                                           ("tierwise:router_errors:ratio_rate5m", "5xx")), unit="percentunit",
              thresholds=((0, "green"), (0.05, "yellow"), (0.25, "red"))),
        Panel("Triage decisions", (("sum by (tier, domain) (rate(tierwise_router_triage_decisions_total"
                                    "[$__rate_interval]))", "tier{{tier}} {{domain}}"),), unit="reqps"),
        Panel("Router latency p50 / p99 (non-streamed)", (
            ('histogram_quantile(0.5, sum by (le, tier) (rate(tierwise_router_request_latency_seconds_bucket{stream="0"}'
             "[$__rate_interval])))", "p50 tier{{tier}}"),
            ("tier:tierwise_router_request_latency_seconds:p99_rate5m", "p99 tier{{tier}}")), unit="s"),
        Panel("Time to first token p99", (("tier:tierwise_router_ttft_seconds:p99_rate5m", "tier{{tier}}"),), unit="s"),
        Panel("Front-door queue depth", ((f"sum by (team) (tierwise_router_queue_depth{T})", "{{team}}"),)),
        Panel("Upstream errors", (("sum by (upstream, kind) (rate(tierwise_router_upstream_errors_total"
                                   "[$__rate_interval]))", "{{upstream}} {{kind}}"),), unit="reqps"),
        Panel("Open circuit breakers", (("max by (upstream) (tierwise_router_breaker_open)", "{{upstream}}"),)),
    ]))
    rows.append(("Models (vLLM)", [
        Panel("Waiting / running requests", ((f"sum by (model_name) (vllm:num_requests_waiting{M})", "{{model_name}} waiting"),
                                             (f"sum by (model_name) (vllm:num_requests_running{M})", "{{model_name}} running")),
              thresholds=((0, "green"), (env.saturation_waiting, "red")),
              description=f"The router skips a replica above {env.saturation_waiting} waiting."),
        Panel("KV cache usage", ((f"max by (model_name) (vllm:kv_cache_usage_perc{M})", "{{model_name}}"),),
              unit="percentunit"),
        Panel("Prefix cache hit ratio", (('model:vllm_prefix_cache_hit:ratio_rate5m{model_name=~"$model"}',
                                          "{{model_name}}"),), unit="percentunit"),
        Panel("Generated tokens/s", ((f"sum by (model_name) (rate(vllm:generation_tokens_total{M}[$__rate_interval]))",
                                      "{{model_name}}"),)),
        Panel("vLLM time to first token p95", ((f"histogram_quantile(0.95, sum by (le, model_name) "
                                                f"(rate(vllm:time_to_first_token_seconds_bucket{M}[$__rate_interval])))",
                                                "{{model_name}}"),), unit="s"),
    ]))
    rows.append(("GPUs and capacity", [
        Panel("GPU utilisation by node", (("tierwise:gpu_util:avg", "{{Hostname}} {{modelName}}"),), unit="percent"),
        Panel("Idle GPUs (≤ threshold for 5m)", (("sum by (modelName) (tierwise:gpus_idle:count)", "{{modelName}}"),),
              description="GpuIdleWaste fires when a GPU stays idle for the configured period."),
        Panel("Allocatable GPUs by Karpenter node pool", (('sum by (nodepool) (karpenter_nodes_allocatable'
                                                          '{resource_type="nvidia.com/gpu"})', "{{nodepool}}"),)),
    ]))
    rows.append(("Guardrails and RAG", [
        Panel("Guardrail decisions", (("sum by (direction, decision) (rate(tierwise_guardrails_decisions_total"
                                       "[$__rate_interval]))", "{{direction}} {{decision}}"),), unit="reqps"),
        Panel("Block / escalate share", (("direction_decision:tierwise_guardrails_decisions:ratio_rate15m",
                                          "{{direction}} {{decision}}"),), unit="percentunit"),
        Panel("Guardrail check p95 by stage", (("histogram_quantile(0.95, sum by (le, stage) "
                                                "(rate(tierwise_guardrails_check_latency_seconds_bucket[$__rate_interval])))",
                                                "{{stage}}"),), unit="s"),
        Panel("Guardrail findings by type", (("sum by (type) (rate(tierwise_guardrails_findings_total[$__rate_interval]))",
                                              "{{type}}"),), unit="reqps"),
        Panel("RAG retrieve stage p95", (("histogram_quantile(0.95, sum by (le, stage) "
                                          "(rate(tierwise_rag_retrieve_stage_seconds_bucket[$__rate_interval])))",
                                          "{{stage}}"),), unit="s"),
        Panel("RAG requests by status", (("sum by (route, status) (rate(tierwise_rag_requests_total[$__rate_interval]))",
                                          "{{route}} {{status}}"),), unit="reqps"),
        Panel("RAG fluid collection staleness", (("max by (collection) (tierwise_rag_fluid_oldest_age_seconds)",
                                                  "{{collection}}"),), unit="s"),
    ]))
    return rows


def _panel_json(p: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": pid, "type": p.kind, "title": p.title, "datasource": DS, "description": p.description,
        "gridPos": {"h": 8 if p.kind == "timeseries" else 4, "w": p.width, "x": x, "y": y},
        "targets": [{"refId": chr(ord("A") + i), "datasource": DS, "expr": e, "legendFormat": leg}
                    for i, (e, leg) in enumerate(p.exprs)],
        "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []},
        "options": {},
    }
    if p.thresholds:
        d["fieldConfig"]["defaults"]["thresholds"] = {
            "mode": "absolute", "steps": [{"value": None if i == 0 else v, "color": c}
                                          for i, (v, c) in enumerate(p.thresholds)]}
        if p.kind == "timeseries":
            d["fieldConfig"]["defaults"]["custom"] = {"thresholdsStyle": {"mode": "line"}}
    if p.kind == "stat":
        d["options"] = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"}
    return d


def render_dashboard(env: ObsEnvironment) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    pid, y = 1, 0
    for row_title, row in _panels(env):
        panels.append({"id": pid, "type": "row", "title": row_title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        pid, y, x, row_h = pid + 1, y + 1, 0, 0
        for p in row:
            if x + p.width > 24:
                x, y, row_h = 0, y + row_h, 0
            pj = _panel_json(p, pid, x, y)
            panels.append(pj)
            pid, x, row_h = pid + 1, x + p.width, max(row_h, pj["gridPos"]["h"])
        y += row_h

    def custom(name: str, label: str, values: list[str]) -> dict[str, Any]:
        return {"name": name, "label": label, "type": "custom", "query": ",".join(values), "multi": True,
                "includeAll": True, "allValue": ".*", "current": {"text": "All", "value": "$__all"},
                "options": [{"text": v, "value": v, "selected": False} for v in values]}

    return {
        "uid": f"tierwise-{env.name}", "title": f"tierwise — {env.name}", "tags": ["tierwise", env.name],
        "schemaVersion": 39, "version": 1, "editable": False, "timezone": "utc", "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0},
            custom("team", "Team", [t.name for t in env.teams]),
            custom("model", "Model", [m.name for m in env.models]),
        ]},
        "annotations": {"list": [{"name": "Alerts", "datasource": DS, "enable": True, "iconColor": "red",
                                  "expr": 'ALERTS{alertstate="firing", alertname=~"TeamBudget.*|Router.*|Vllm.*|Gpu.*|Guardrail.*"}',
                                  "titleFormat": "{{alertname}}", "textFormat": "{{team}}{{model_name}}"}]},
        "panels": panels,
    }


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) for every query in the dashboard, annotations included."""
    out = [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]
    out += [(f"annotation {a['name']}", a["expr"]) for a in dashboard["annotations"]["list"] if "expr" in a]
    return out


def concrete(expr: str) -> str:
    """The query with Grafana variables replaced by sample values, so Prometheus tools can parse it."""
    for k, v in VARIABLE_SAMPLES.items():
        expr = expr.replace(k, v)
    return expr


def configmap(env: ObsEnvironment, dashboard: dict[str, Any], namespace: str = "monitoring") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"tierwise-dashboard-{env.name}", "namespace": namespace,
                         "labels": {"grafana_dashboard": "1", "app.kubernetes.io/part-of": "tierwise"}},
            "data": {f"tierwise-{env.name}.json": json.dumps(dashboard, indent=1, sort_keys=True)}}
