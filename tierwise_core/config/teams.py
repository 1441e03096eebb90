"""Teams and money: each team's namespaces, budget, allowed models, GPU quota and routing mode; the
platform budget; and the Bedrock section (allowed model ids, invocation logging, guardrail)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .base import Name, Strict

# --------------------------------------------------------------------------------------------
# Teams, Bedrock
class BedrockBudget(Strict):
    model_id: str
    monthly_input_mtok: Annotated[float, Field(ge=0)] = 0
    monthly_output_mtok: Annotated[float, Field(ge=0)] = 0


class Team(Strict):
    name: Name
    cost_center: Annotated[str, Field(min_length=2, max_length=64)]
    namespaces: Annotated[list[Name], Field(min_length=1)]
    monthly_budget_usd: Annotated[float, Field(gt=0)]
    #: Catalog model names and Bedrock model ids this team may call through the router.
    allowed_models: list[str] = Field(default_factory=list)
    #: Physical GPUs per pool the team's Kueue ClusterQueue may admit.
    gpu_quota: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    bedrock: list[BedrockBudget] = Field(default_factory=list)
    budget_alert_emails: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]] = Field(default_factory=list)
    tokens_per_day: Annotated[int, Field(ge=0)] = 5_000_000
    #: How the router routes this team's `auto` calls: triage alone, Tier 1 first with escalation to Tier 2 on
    #: low confidence, or triage with that cascade for the calls triage is unsure of (workloads/router/README.md).
    routing_mode: Literal["triage", "cascade", "triage+cascade"] = "triage"

    def workload_namespace(self, namespace: str | None = None) -> str:
        """Where one of the team's workloads (an agent, a training Job) runs: its own `namespace`, else the team's first."""
        return namespace or self.namespaces[0]


class Platform(Strict):
    """The environment's money fence. Every NodePool limit (GPU and CPU) and node-group maximum is what the
    platform can buy with no team asking (any pod with the toleration makes Karpenter launch up to it), so the
    policy gate (TW-COST-005) bounds that worst case at on-demand prices, plus the teams' Bedrock token budgets,
    against `monthly_budget_usd`. Synthesized as an account-wide monthly AWS Budget tagged
    `tierwise.io/budget-scope: platform` (the environment's account is the platform's)."""

    monthly_budget_usd: Annotated[float, Field(gt=0)]
    budget_alert_emails: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]] = Field(default_factory=list)


class Guardrail(Strict):
    enabled: bool = False
    blocked_message: str = "This request was blocked by the platform's content policy."
    pii_entities_to_anonymize: list[str] = Field(default_factory=lambda: ["EMAIL", "PHONE", "US_SOCIAL_SECURITY_NUMBER"])


class Bedrock(Strict):
    #: Foundation-model ids (or inference-profile ids) the platform may invoke.
    allowed_model_ids: list[Annotated[str, Field(pattern=r"^[a-z0-9.-]+\.[a-zA-Z0-9.:-]+$")]] = Field(default_factory=list)
    invocation_logging: bool = True
    log_retention_days: Annotated[int, Field(ge=1, le=3653)] = 365
    guardrail: Guardrail = Guardrail()
