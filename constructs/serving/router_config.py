"""The router's configuration file, rendered from the environment (one source of truth).

Shape: `workloads/router/tierwise_router/config.py` RouterConfig, except that teams carry no
`api_key_sha256`: key hashes live in a Kubernetes Secret (`api-keys.yaml`: {team: [sha256, ...]})
that the router pod's init container merges in (`MERGE_SCRIPT`), then checks with `check-config`.
"""

from __future__ import annotations

import json
from typing import Any

from tierwise.config.agents import Agent
from tierwise.config.model import Bedrock, CatalogModel, Serving, Team

BASE_FILE = "router.base.json"
KEYS_FILE = "api-keys.yaml"

#: Init-container script: base config + key hashes from the Secret → the file the router reads.
MERGE_SCRIPT = (
    "import json, sys, yaml\n"
    "base = json.load(open(sys.argv[1]))\n"
    "keys = yaml.safe_load(open(sys.argv[2])) or {}\n"
    "missing = [t['name'] for t in base['teams'] if not keys.get(t['name'])]\n"
    "if missing: sys.exit('no API key hashes for teams: ' + ', '.join(missing))\n"
    "for t in base['teams']: t['api_key_sha256'] = list(keys[t['name']])\n"
    "json.dump(base, open(sys.argv[3], 'w'), sort_keys=True)\n"
)


def _usd(x: float) -> str:
    return f"{x:.6f}".rstrip("0").rstrip(".") or "0"


def render_router_config(*, teams: list[Team], models: list[CatalogModel], bedrock: Bedrock, serving: Serving, region: str,
                         model_urls: dict[str, str], rag_url: str, guardrails_url: str | None,
                         agents: list[Agent] = (), gateway_url: str | None = None) -> dict[str, Any]:
    """The router's RouterConfig. Retrieval augmentation is on only when the environment names the
    collections the router may ground answers in (`serving.router_rag_collections`): the RAG
    service requires them, and an empty list must mean "off", not "everything"."""
    if not models:
        raise ValueError("the router needs at least one catalog model (tier 1)")
    out_models: list[dict[str, Any]] = []
    for m in models:
        out_models.append({"name": m.name, "tier": 1, "kind": "vllm", "served_model_name": m.name,
                           "endpoints": [model_urls[m.name]], "adapters": [a.name for a in m.lora_adapters],
                           "price": {"input_usd_per_mtok": _usd(m.price_per_mtok_usd),
                                     "output_usd_per_mtok": _usd(m.price_per_mtok_usd)}})
    for model_id in bedrock.allowed_model_ids:
        price = serving.bedrock_prices[model_id]
        out_models.append({"name": model_id, "tier": 2, "kind": "bedrock", "model_id": model_id, "region": region,
                           "price": {"input_usd_per_mtok": _usd(price.input_usd_per_mtok),
                                     "output_usd_per_mtok": _usd(price.output_usd_per_mtok)}})
    tier1 = serving.router_tier1_model or models[0].name
    tier2 = serving.router_tier2_model or (bedrock.allowed_model_ids[0] if bedrock.allowed_model_ids else None)
    routing: dict[str, Any] = {"tier1_model": tier1, "target_tier2_share": serving.target_tier2_share,
                               "saturation_waiting": serving.queue_target_waiting * 4}
    if tier2:
        routing["tier2_model"] = tier2
    if gateway_url:  # in the cluster with the inference Gateway on: Tier 1 goes through it (its pickers balance)
        routing["gateway_url"] = gateway_url
    hooks: dict[str, Any] = {"fail_open": False}
    if serving.router_rag_collections:
        hooks.update(rag_url=rag_url, rag_collections=list(serving.router_rag_collections))
    if guardrails_url:
        hooks["guardrails_url"] = guardrails_url
    return {
        "version": 1,
        "teams": [{"name": t.name, "budgets": {"tokens_per_day": t.tokens_per_day, "usd_per_month": _usd(t.monthly_budget_usd)},
                   "allowed_models": sorted(t.allowed_models),
                   **({"mode": t.routing_mode} if t.routing_mode != "triage" else {})} for t in teams]
                 # each agent is its own principal (own key, budget, models), named `<team>:agent:<name>`
                 + [{"name": a.router_principal, "budgets": {"tokens_per_day": a.tokens_per_day, **(
                     {"usd_per_month": _usd(a.monthly_budget_usd)} if a.monthly_budget_usd else {})},
                     "allowed_models": sorted(a.models)} for a in agents],
        "models": out_models,
        "routing": routing,
        "hooks": hooks,
    }


def render_router_base_file(**kwargs: Any) -> str:
    return json.dumps(render_router_config(**kwargs), indent=2, sort_keys=True) + "\n"
