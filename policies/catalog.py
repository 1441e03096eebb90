"""The explicit catalog of tierwise checks and the packs that select them (no import-time registration)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tierwise.policies.checks.agents.tw_agent_001_own_identity import AgentOwnIdentity
from tierwise.policies.checks.agents.tw_agent_002_models_via_router import AgentModelsViaRouter
from tierwise.policies.checks.agents.tw_agent_003_declared_egress import AgentDeclaredEgress
from tierwise.policies.checks.cost.tw_cost_001_gpu_limit import GpuNodePoolLimit
from tierwise.policies.checks.cost.tw_cost_002_worst_case_budget import WorstCaseWithinBudget
from tierwise.policies.checks.cost.tw_cost_003_team_budget import TeamBudgetAlerts
from tierwise.policies.checks.cost.tw_cost_004_quota_within_limits import QuotaWithinPoolLimits
from tierwise.policies.checks.cost.tw_cost_005_platform_budget import PlatformWorstCaseWithinBudget
from tierwise.policies.checks.deploy.tw_deploy_001_mig_layouts import MigLayoutsFit
from tierwise.policies.checks.deploy.tw_deploy_002_gpu_advertiser import OneGpuAdvertiser
from tierwise.policies.checks.deploy.tw_deploy_003_image_sources import ImagesReachable
from tierwise.policies.checks.deploy.tw_deploy_004_bedrock_profiles import BedrockInvokable
from tierwise.policies.checks.deploy.tw_deploy_005_canary_rollback import CanaryHasRollbackTarget
from tierwise.policies.checks.iam.tw_iam_001_workload_binding import WorkloadRoleBinding
from tierwise.policies.checks.iam.tw_iam_002_least_privilege import LeastPrivilege
from tierwise.policies.checks.iam.tw_iam_003_bedrock_allowlist import BedrockAllowlist
from tierwise.policies.checks.network.tw_net_001_egress_path import EgressPath
from tierwise.policies.checks.network.tw_net_002_firewall_allowlist import FirewallAllowlist
from tierwise.policies.checks.network.tw_net_003_default_deny import DefaultDeny
from tierwise.policies.checks.tagging.tw_tag_001_required_tags import RequiredTags
from tierwise.policies.engine import Check

ALL: tuple[type, ...] = (
    WorkloadRoleBinding, LeastPrivilege, BedrockAllowlist,
    EgressPath, FirewallAllowlist, DefaultDeny,
    GpuNodePoolLimit, WorstCaseWithinBudget, TeamBudgetAlerts, QuotaWithinPoolLimits, PlatformWorstCaseWithinBudget,
    RequiredTags,
    AgentOwnIdentity, AgentModelsViaRouter, AgentDeclaredEgress,
    MigLayoutsFit, OneGpuAdvertiser, ImagesReachable, BedrockInvokable, CanaryHasRollbackTarget,
)
PACKS_DIR = Path(__file__).parent / "packs"


def by_id() -> dict[str, type]:
    return {c.meta.id: c for c in ALL}


def pack_names() -> list[str]:
    return sorted(p.stem for p in PACKS_DIR.glob("*.yaml"))


def load_pack(name: str) -> list[Check]:
    f = PACKS_DIR / f"{name}.yaml"
    if not f.exists():
        raise ValueError(f"unknown pack {name!r}; packs: {', '.join(pack_names())}")
    data = yaml.safe_load(f.read_text()) or {}
    ids = data.get("checks", [])
    known = by_id()
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ValueError(f"pack {name}: unknown check ids {unknown}; known: {sorted(known)}")
    return [known[i]() for i in ids]
