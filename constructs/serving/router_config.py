"""The router's configuration file, rendered from `RouterConfigProps` (the serving stack builds them from its
slice of the environment: one source of truth; this module never sees the config model).

Shape: `workloads/router/tierwise_router/config.py` RouterConfig, except that teams carry no
`api_key_sha256`: key hashes live in a Kubernetes Secret (`api-keys.yaml`: {team: [sha256, ...]})
that the router pod's init container merges in (`MERGE_SCRIPT`), then checks with `check-config`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class RouterPrincipal:
    """One caller the router knows: a team, or an agent with its own key (`<team>:agent:<name>`)."""

    name: str
    tokens_per_day: int
    allowed_models: tuple[str, ...]
    #: Monthly USD cap; always set for teams, optional for agents.
    usd_per_month: float | None = None
    #: How the router routes `auto` calls (triage | cascade | triage+cascade); omitted from the file when triage.
    mode: str = "triage"


@dataclass(frozen=True)
class SelfHostedModel:
    """A Tier-1 catalog model: the Service URL of its vLLM server, its LoRA adapters and its price per Mtok."""

    name: str
    endpoint: str
    adapters: tuple[str, ...]
    usd_per_mtok: float


@dataclass(frozen=True)
class BedrockModel:
    """A Tier-2 Bedrock model id with the prices the router charges teams."""

    model_id: str
    input_usd_per_mtok: float
    output_usd_per_mtok: float


@dataclass(frozen=True)
class RouterConfigProps:
    principals: tuple[RouterPrincipal, ...]
    models: tuple[SelfHostedModel, ...]
    bedrock_models: tuple[BedrockModel, ...]
    region: str
    target_tier2_share: float
    #: Waiting requests at which a Tier-1 model counts as saturated.
    saturation_waiting: int
    rag_url: str
    guardrails_url: str | None
    #: Tier-1 / Tier-2 defaults; the first self-hosted model / first Bedrock model when None.
    tier1_model: str | None = None
    tier2_model: str | None = None
    #: RAG collections the router grounds answers in; retrieval augmentation is off when empty.
    rag_collections: tuple[str, ...] = ()
    #: The inference Gateway's URL when it is on: Tier 1 goes through it (its pickers balance).
    gateway_url: str | None = None


def render_router_config(props: RouterConfigProps) -> dict[str, Any]:
    """The router's RouterConfig. Retrieval augmentation is on only when the environment names the
    collections the router may ground answers in (`rag_collections`): the RAG service requires them,
    and an empty list must mean "off", not "everything"."""
    if not props.models:
        raise ValueError("the router needs at least one catalog model (tier 1)")
    out_models: list[dict[str, Any]] = []
    for m in props.models:
        out_models.append({"name": m.name, "tier": 1, "kind": "vllm", "served_model_name": m.name,
                           "endpoints": [m.endpoint], "adapters": list(m.adapters),
                           "price": {"input_usd_per_mtok": _usd(m.usd_per_mtok), "output_usd_per_mtok": _usd(m.usd_per_mtok)}})
    for b in props.bedrock_models:
        out_models.append({"name": b.model_id, "tier": 2, "kind": "bedrock", "model_id": b.model_id, "region": props.region,
                           "price": {"input_usd_per_mtok": _usd(b.input_usd_per_mtok),
                                     "output_usd_per_mtok": _usd(b.output_usd_per_mtok)}})
    tier1 = props.tier1_model or props.models[0].name
    tier2 = props.tier2_model or (props.bedrock_models[0].model_id if props.bedrock_models else None)
    routing: dict[str, Any] = {"tier1_model": tier1, "target_tier2_share": props.target_tier2_share,
                               "saturation_waiting": props.saturation_waiting}
    if tier2:
        routing["tier2_model"] = tier2
    if props.gateway_url:
        routing["gateway_url"] = props.gateway_url
    hooks: dict[str, Any] = {"fail_open": False}
    if props.rag_collections:
        hooks.update(rag_url=props.rag_url, rag_collections=list(props.rag_collections))
    if props.guardrails_url:
        hooks["guardrails_url"] = props.guardrails_url
    return {
        "version": 1,
        "teams": [{"name": p.name, "budgets": {"tokens_per_day": p.tokens_per_day, **(
                       {"usd_per_month": _usd(p.usd_per_month)} if p.usd_per_month is not None else {})},
                   "allowed_models": sorted(p.allowed_models), **({"mode": p.mode} if p.mode != "triage" else {})}
                  for p in props.principals],
        "models": out_models,
        "routing": routing,
        "hooks": hooks,
    }


def render_router_base_file(props: RouterConfigProps) -> str:
    return json.dumps(render_router_config(props), indent=2, sort_keys=True) + "\n"
