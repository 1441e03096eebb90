"""Every metric family the rules and dashboards may name, with its type.

Our services' families are checked against their source (`tests/test_catalog.py` reads each
service's `observability.py` with `ast`, no import) and the router's against its live `/metrics`
(e2e). Third-party names are listed explicitly, with the version they were checked against:
- vLLM 0.32 (`vllm/v1/metrics/loggers.py`; verified in the tests when `.venv-vllm` exists),
- NVIDIA dcgm-exporter default counters (`default-counters.csv`),
- Karpenter v1 (`karpenter_nodes_*`, `karpenter_nodepools_*`),
- Prometheus itself (`up`, `ALERTS`).
"""

from __future__ import annotations

# family -> type, as prometheus_client exposes them (counters gain `_total`, histograms `_bucket` ...).
ROUTER = {
    "tierwise_router_requests": "counter",
    "tierwise_router_request_latency_seconds": "histogram",
    "tierwise_router_ttft_seconds": "histogram",
    "tierwise_router_tokens": "counter",
    "tierwise_router_cost_usd": "counter",
    "tierwise_router_fallbacks": "counter",
    "tierwise_router_triage_decisions": "counter",
    "tierwise_router_rejections": "counter",
    "tierwise_router_queue_depth": "gauge",
    "tierwise_router_upstream_errors": "counter",
    "tierwise_router_breaker_open": "gauge",
    "tierwise_router_upstream_waiting": "gauge",
    "tierwise_router_gc_pause_seconds": "histogram",
    "tierwise_router_event_loop_lag_seconds": "histogram",
    "tierwise_router_ledger_backlog_bytes": "gauge",
    "tierwise_router_ledger_full": "gauge",
    "tierwise_router_ledger_segments_shipped": "counter",
    "tierwise_router_ledger_ship_failures": "counter",
}
GUARDRAILS = {
    "tierwise_guardrails_requests": "counter",
    "tierwise_guardrails_decisions": "counter",
    "tierwise_guardrails_findings": "counter",
    "tierwise_guardrails_check_latency_seconds": "histogram",
}
RAG = {
    "tierwise_rag_requests": "counter",
    "tierwise_rag_request_seconds": "histogram",
    "tierwise_rag_retrieve_stage_seconds": "histogram",
    "tierwise_rag_documents": "counter",
    "tierwise_rag_fluid_oldest_age_seconds": "gauge",
}
SERVICES = {"router": ROUTER, "guardrails": GUARDRAILS, "rag": RAG}

VLLM = {
    "vllm:num_requests_waiting": "gauge",
    "vllm:num_requests_running": "gauge",
    "vllm:kv_cache_usage_perc": "gauge",
    "vllm:prefix_cache_hits": "counter",
    "vllm:prefix_cache_queries": "counter",
    "vllm:prompt_tokens": "counter",
    "vllm:generation_tokens": "counter",
    "vllm:request_success": "counter",
    "vllm:time_to_first_token_seconds": "histogram",
    "vllm:e2e_request_latency_seconds": "histogram",
    "vllm:request_queue_time_seconds": "histogram",
}
DCGM = {
    "DCGM_FI_DEV_GPU_UTIL": "gauge",
    "DCGM_FI_DEV_FB_USED": "gauge",
    "DCGM_FI_DEV_FB_FREE": "gauge",
    "DCGM_FI_DEV_POWER_USAGE": "gauge",
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE": "gauge",
}
KARPENTER = {
    "karpenter_nodes_allocatable": "gauge",
    "karpenter_nodes_total_pod_requests": "gauge",
    "karpenter_nodepools_usage": "gauge",
    "karpenter_nodepools_limit": "gauge",
    "karpenter_nodeclaims_created": "counter",
    "karpenter_nodeclaims_disrupted": "counter",
}
PROMETHEUS = {"up": "gauge", "ALERTS": "gauge", "ALERTS_FOR_STATE": "gauge"}

ALL_FAMILIES: dict[str, str] = {**ROUTER, **GUARDRAILS, **RAG, **VLLM, **DCGM, **KARPENTER, **PROMETHEUS}


def series_names(family: str, typ: str) -> set[str]:
    """The sample names a family exposes (prometheus_client/OpenMetrics text conventions)."""
    base = family.removesuffix("_total") if typ == "counter" else family
    if typ == "counter":
        return {base + "_total", base + "_created"}
    if typ == "histogram":
        return {base + "_bucket", base + "_sum", base + "_count", base + "_created"}
    if typ == "summary":
        return {base, base + "_sum", base + "_count", base + "_created"}
    return {family}


def known_series() -> set[str]:
    out: set[str] = set()
    for fam, typ in ALL_FAMILIES.items():
        out |= series_names(fam, typ)
    return out
