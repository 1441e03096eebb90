"""Prometheus recording and alerting rules, as code.

`render_rules(env)` returns the rule file (a dict in Prometheus' `groups:` format) for one
environment. It is data-driven from the environment YAML: every team's monthly USD budget becomes
a constant series, so burn rates are plain division and a team added to `environments/<env>.yaml`
gets its alerts on the next `tierwise observability generate`.

Metric names are the services' real ones (see `metrics_catalog.py`, checked against their source
and live /metrics in the tests):
- router (`tierwise_router_*`): cost_usd_total{team,model,tier}, requests_total{team,model,tier,status},
  fallbacks_total{reason}, rejections_total{team,reason}, request_latency_seconds{tier,stream},
  ttft_seconds{tier};
- guardrails (`tierwise_guardrails_*`): decisions_total{direction,decision};
- vLLM: vllm:num_requests_waiting, vllm:kv_cache_usage_perc, vllm:prefix_cache_{hits,queries}_total;
- DCGM exporter: DCGM_FI_DEV_GPU_UTIL (0-100).

Budget burn rate follows the multi-window, multi-burn-rate recipe of the Google SRE workbook
("Alerting on SLOs", table 5-8), with the monthly budget in place of the error budget:
a burn rate of 1 spends exactly the monthly budget in 30 days; 14.4 over 1h spends 2% in an hour.
Each long window is paired with a short one (1/12 of it) so the alert stops soon after the burn stops.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .environment import ObsEnvironment

MONTH_S = 30 * 24 * 3600

#: (long window, short window, burn-rate factor, severity) — SRE workbook table 5-8.
BURN_WINDOWS: tuple[tuple[str, str, float, str], ...] = (
    ("1h", "5m", 14.4, "page"),
    ("6h", "30m", 6.0, "page"),
    ("1d", "2h", 3.0, "ticket"),
    ("3d", "6h", 1.0, "ticket"),
)
RATE_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")

#: Scrape job names the generated scrape configs use (scrape.py); TierwiseTargetDown watches them.
JOBS = ("tierwise-router", "tierwise-rag", "tierwise-guardrails", "tierwise-vllm", "dcgm-exporter", "karpenter")

#: Runbooks are README sections (a repo path, so forks need not rewrite a URL).
RUNBOOK = "workloads/observability/README.md#"


@dataclass(frozen=True)
class RuleOptions:
    """Thresholds. Defaults are production values; tests and forks override them per environment."""

    gpu_idle_util_percent: float = 5.0    # DCGM_FI_DEV_GPU_UTIL (0-100) at or under this = idle
    gpu_idle_for: str = "30m"             # ...for this long while the node exports metrics
    fallback_ratio: float = 0.25          # Tier-1 → Tier-2 fallbacks / requests
    error_ratio: float = 0.05             # router 5xx / requests
    min_request_rate: float = 0.05        # req/s: ratio alerts stay silent below this traffic
    guardrail_ratio_floor: float = 0.05   # block or escalate share of checks (absolute floor)...
    guardrail_spike_factor: float = 3.0   # ...and at least this many times the 1-day share
    router_p99_latency_s: float = 10.0    # non-streamed end-to-end p99 (includes generation)
    router_ttft_p99_s: float = 2.0        # streamed time to first byte p99
    kv_cache_full: float = 0.95
    #: Replace every `for:` (e.g. "0s") — used by the end-to-end test only, never in generated files.
    for_override: str | None = None


def _alert(name: str, expr: str, for_: str, severity: str, component: str, summary: str, description: str,
           opts: RuleOptions) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": opts.for_override if opts.for_override is not None else for_,
        "labels": {"severity": severity, "component": component},
        "annotations": {"summary": summary, "description": description, "runbook": RUNBOOK + name.lower()},
    }


def _rec(record: str, expr: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    r: dict[str, Any] = {"record": record, "expr": expr}
    if labels:
        r["labels"] = labels
    return r


def _num(x: float) -> str:
    return repr(float(x)).removesuffix(".0") if float(x).is_integer() else repr(float(x))


def budget_group(env: ObsEnvironment, o: RuleOptions) -> list[dict[str, Any]]:
    groups = []
    consts = [_rec("team:tierwise_budget_usd:monthly", f"vector({_num(t.monthly_budget_usd)})",
                   {"team": t.name, "cost_center": t.cost_center}) for t in env.teams]
    rates = [_rec(f"team:tierwise_router_cost_usd:rate{w}",
                  f"sum by (team) (rate(tierwise_router_cost_usd_total[{w}]))") for w in RATE_WINDOWS]
    burns = [_rec(f"team:tierwise_budget_burn:rate{w}",
                  f"team:tierwise_router_cost_usd:rate{w}\n  / on (team)\n"
                  f"(team:tierwise_budget_usd:monthly / {MONTH_S})") for w in RATE_WINDOWS]
    groups.append({"name": "tierwise-budget.rules", "interval": "1m", "rules": consts + rates + burns})

    def cond(sev: str) -> str:
        parts = [f"(team:tierwise_budget_burn:rate{lw} > {_num(f)} and team:tierwise_budget_burn:rate{sw} > {_num(f)})"
                 for lw, sw, f, s in BURN_WINDOWS if s == sev]
        return "\nor\n".join(parts)

    alerts = [
        _alert("TeamBudgetBurnFast", cond("page"), "2m", "page", "budget",
               "Team {{ $labels.team }} is burning its monthly budget fast",
               "Spend rate is {{ $value | humanize }}x the rate that would exactly use the monthly budget in 30 days "
               "(over 1h and 5m: >14.4x = 2% of the month in an hour; or over 6h and 30m: >6x).", o),
        _alert("TeamBudgetBurnSlow", cond("ticket"), "15m", "ticket", "budget",
               "Team {{ $labels.team }} will exhaust its monthly budget early",
               "Spend rate is {{ $value | humanize }}x the sustainable rate (over 1d and 2h: >3x; or 3d and 6h: >1x).",
               o),
        _alert("TeamBudgetExhausted",
               'sum by (team, reason) (increase(tierwise_router_rejections_total{reason=~"usd_per_month|tokens_per_day"}[10m])) > 0',
               "0s", "ticket", "budget",
               "Team {{ $labels.team }} is being refused: budget {{ $labels.reason }} exhausted",
               "The router answered 429 budget_{{ $labels.reason }} {{ $value | humanize }} times in 10m.", o),
    ]
    groups.append({"name": "tierwise-budget.alerts", "rules": alerts})
    return groups


def serving_group(env: ObsEnvironment, o: RuleOptions) -> list[dict[str, Any]]:
    rules = [
        _rec("model:vllm_num_requests_waiting:sum", "sum by (model_name) (vllm:num_requests_waiting)"),
        _rec("model:vllm_num_requests_running:sum", "sum by (model_name) (vllm:num_requests_running)"),
        _rec("model:vllm_prefix_cache_hit:ratio_rate5m",
             "sum by (model_name) (rate(vllm:prefix_cache_hits_total[5m]))\n  /\n"
             "sum by (model_name) (rate(vllm:prefix_cache_queries_total[5m]))"),
        _rec("tierwise:gpus_idle:count",
             f"count by (Hostname, modelName) (max_over_time(DCGM_FI_DEV_GPU_UTIL[5m]) <= {_num(o.gpu_idle_util_percent)})"),
        _rec("tierwise:gpu_util:avg", "avg by (Hostname, modelName) (DCGM_FI_DEV_GPU_UTIL)"),
    ]
    alerts = [
        _alert("VllmQueueSaturated", f"vllm:num_requests_waiting > {env.saturation_waiting}", "5m", "warning",
               "serving",
               "vLLM replica {{ $labels.pod }}{{ $labels.instance }} ({{ $labels.model_name }}) queue is saturated",
               f"{{{{ $value }}}} requests waiting (> {env.saturation_waiting}, the router's saturation_waiting): "
               "the router is skipping this replica and Tier-2 fallbacks rise. Check KEDA scaling and GPU capacity.",
               o),
        _alert("VllmKvCacheFull", f"vllm:kv_cache_usage_perc > {_num(o.kv_cache_full)}", "10m", "warning", "serving",
               "vLLM replica {{ $labels.pod }}{{ $labels.instance }} KV cache is {{ $value | humanizePercentage }} full",
               "Requests are being preempted or queued for KV blocks; lower max_num_seqs or add replicas.", o),
        _alert("GpuIdleWaste",
               f"max_over_time(DCGM_FI_DEV_GPU_UTIL[5m]) <= {_num(o.gpu_idle_util_percent)}",
               o.gpu_idle_for, "ticket", "capacity",
               "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} ({{ $labels.modelName }}) idle while paid for",
               f"Utilisation never exceeded {_num(o.gpu_idle_util_percent)}% in any 5m window for {o.gpu_idle_for} while "
               "the node was up. Check Karpenter consolidation (consolidate_after), min replicas, scale-to-zero.", o),
    ]
    return [{"name": "tierwise-serving.rules", "rules": rules}, {"name": "tierwise-serving.alerts", "rules": alerts}]


def router_group(env: ObsEnvironment, o: RuleOptions) -> list[dict[str, Any]]:
    traffic = f"tierwise:router_requests:rate5m > {_num(o.min_request_rate)}"
    rules = [
        _rec("tierwise:router_requests:rate5m", "sum(rate(tierwise_router_requests_total[5m]))"),
        _rec("team_tier:tierwise_router_requests:rate5m",
             "sum by (team, tier) (rate(tierwise_router_requests_total[5m]))"),
        _rec("reason:tierwise_router_fallbacks:rate5m", "sum by (reason) (rate(tierwise_router_fallbacks_total[5m]))"),
        _rec("tierwise:router_fallback:ratio_rate5m",
             "sum(rate(tierwise_router_fallbacks_total[5m]))\n  /\nsum(rate(tierwise_router_requests_total[5m]))"),
        _rec("tierwise:router_errors:ratio_rate5m",
             'sum(rate(tierwise_router_requests_total{status=~"5.."}[5m]))\n  /\n'
             "sum(rate(tierwise_router_requests_total[5m]))"),
        _rec("tier:tierwise_router_request_latency_seconds:p99_rate5m",
             "histogram_quantile(0.99, sum by (le, tier) "
             '(rate(tierwise_router_request_latency_seconds_bucket{stream="0"}[5m])))'),
        _rec("tier:tierwise_router_ttft_seconds:p99_rate5m",
             "histogram_quantile(0.99, sum by (le, tier) (rate(tierwise_router_ttft_seconds_bucket[5m])))"),
        _rec("team_tier:tierwise_router_tokens:rate5m",
             "sum by (team, tier, direction) (rate(tierwise_router_tokens_total[5m]))"),
    ]
    alerts = [
        _alert("RouterTier2FallbackSpike",
               f"tierwise:router_fallback:ratio_rate5m > {_num(o.fallback_ratio)}\nand\n{traffic}", "10m", "warning",
               "router", "{{ $value | humanizePercentage }} of router calls fall back from Tier 1 to Tier 2",
               "Tier 1 (self-hosted vLLM) is failing, saturated or circuit-broken, so calls go to Bedrock at "
               "Tier-2 prices. See reason:tierwise_router_fallbacks:rate5m for the reason.", o),
        _alert("RouterErrorRatioHigh", f"tierwise:router_errors:ratio_rate5m > {_num(o.error_ratio)}\nand\n{traffic}",
               "5m", "page", "router", "{{ $value | humanizePercentage }} of router calls fail with 5xx",
               "Both tiers unavailable or hooks (guardrails/RAG) down with fail_open=false.", o),
        _alert("RouterLatencyP99High",
               f"tier:tierwise_router_request_latency_seconds:p99_rate5m > {_num(o.router_p99_latency_s)}", "10m",
               "warning", "router", "Router p99 latency on tier {{ $labels.tier }} is {{ $value | humanizeDuration }}",
               f"Non-streamed end-to-end p99 above the {_num(o.router_p99_latency_s)}s SLO.", o),
        _alert("RouterTtftP99High", f"tier:tierwise_router_ttft_seconds:p99_rate5m > {_num(o.router_ttft_p99_s)}",
               "10m", "warning", "router",
               "Router p99 time to first token on tier {{ $labels.tier }} is {{ $value | humanizeDuration }}",
               f"Streamed time-to-first-byte p99 above the {_num(o.router_ttft_p99_s)}s SLO.", o),
    ]
    return [{"name": "tierwise-router.rules", "rules": rules}, {"name": "tierwise-router.alerts", "rules": alerts}]


def guardrails_group(env: ObsEnvironment, o: RuleOptions) -> list[dict[str, Any]]:
    def ratio(w: str) -> str:
        return (f'sum by (direction, decision) (rate(tierwise_guardrails_decisions_total{{decision=~"block|escalate"}}[{w}]))\n'
                f"  / on (direction) group_left ()\n"
                f"sum by (direction) (rate(tierwise_guardrails_decisions_total[{w}]))")

    rules = [_rec("direction_decision:tierwise_guardrails_decisions:ratio_rate15m", ratio("15m")),
             _rec("direction_decision:tierwise_guardrails_decisions:ratio_rate1d", ratio("1d"))]
    alerts = [_alert(
        "GuardrailBlockSpike",
        f"direction_decision:tierwise_guardrails_decisions:ratio_rate15m > {_num(o.guardrail_ratio_floor)}\nand\n"
        f"direction_decision:tierwise_guardrails_decisions:ratio_rate15m\n  > {_num(o.guardrail_spike_factor)} * "
        "direction_decision:tierwise_guardrails_decisions:ratio_rate1d",
        "5m", "warning", "guardrails",
        "Guardrail {{ $labels.decision }} rate on {{ $labels.direction }} spiked to {{ $value | humanizePercentage }}",
        f"More than {_num(o.guardrail_ratio_floor * 100)}% of {{{{ $labels.direction }}}} checks are "
        f"{{{{ $labels.decision }}}}ed, over {_num(o.guardrail_spike_factor)}x the 1-day share: an attack, a "
        "misbehaving client, or a bad recognizer/classifier release.", o)]
    return [{"name": "tierwise-guardrails.rules", "rules": rules}, {"name": "tierwise-guardrails.alerts",
                                                                      "rules": alerts}]


def health_group(env: ObsEnvironment, o: RuleOptions) -> list[dict[str, Any]]:
    jobs = "|".join(JOBS)
    return [{"name": "tierwise-health.alerts", "rules": [_alert(
        "TierwiseTargetDown", f'up{{job=~"{jobs}"}} == 0', "5m", "warning", "monitoring",
        "Scrape target {{ $labels.job }} {{ $labels.instance }} is down",
        "Prometheus cannot scrape it: every rule and panel fed by this target is blind.", o)]}]


def render_rules(env: ObsEnvironment, opts: RuleOptions | None = None) -> dict[str, Any]:
    o = opts or RuleOptions()
    groups: list[dict[str, Any]] = []
    for g in (budget_group, serving_group, router_group, guardrails_group, health_group):
        groups += g(env, o)
    return {"groups": groups}


def split_rules(rules: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(recording groups, alerting groups) — the prometheus Helm chart keeps them in two files."""
    rec = [g for g in rules["groups"] if all("record" in r for r in g["rules"])]
    alt = [g for g in rules["groups"] if all("alert" in r for r in g["rules"])]
    assert len(rec) + len(alt) == len(rules["groups"]), "a group mixes recording and alerting rules"
    return {"groups": rec}, {"groups": alt}


def alert_names(rules: dict[str, Any]) -> list[str]:
    return [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]


def record_names(rules: dict[str, Any]) -> list[str]:
    return sorted({r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r})


def with_options(opts: RuleOptions, **kw: Any) -> RuleOptions:
    return replace(opts, **kw)
