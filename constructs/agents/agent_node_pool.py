"""`AgentNodePool`: the dedicated CPU Karpenter NodePool every agent runs on.

Agent nodes carry the `tierwise.io/agents` NoSchedule taint (only agent pods tolerate it) and a role
label agents select, so agents never share nodes with model servers or platform services, and hard
**CPU and memory limits** bound what a burst of queued work can launch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from constructs import Construct

from ..capacity.node_pool import node_pool_body
from ..kubernetes import KubernetesObject

ROLE_LABEL = "tierwise.io/node-role"
ROLE = "agents"
TAINT = {"key": "tierwise.io/agents", "value": "true", "effect": "NoSchedule"}


def agent_placement() -> dict[str, Any]:
    """Pod-spec fields that put a pod on the agent pool (and only there)."""
    return {"nodeSelector": {ROLE_LABEL: ROLE},
            "tolerations": [{"key": TAINT["key"], "operator": "Equal", "value": TAINT["value"], "effect": TAINT["effect"]}]}


@dataclass(frozen=True)
class AgentNodePoolProps:
    name: str
    node_class_name: str
    instance_categories: list[str]
    capacity_types: list[str]
    cpu_limit: int
    memory_limit_gib: int
    consolidate_after: str = "5m"
    disruption_budget_nodes: str = "10%"
    expire_after: str = "720h"


class AgentNodePool(KubernetesObject):
    """Creates one `karpenter.sh/v1` NodePool (CPU-only instance categories, no GPU instances, agent taint,
    CPU and memory limits)."""

    def __init__(self, scope: Construct, id: str, *, props: AgentNodePoolProps) -> None:
        p = props
        if p.cpu_limit < 1 or p.memory_limit_gib < 1:
            raise ValueError(f"AgentNodePool {p.name}: cpu_limit and memory_limit_gib must be >= 1 (an unlimited pool "
                             f"has no cost ceiling), got {p.cpu_limit}/{p.memory_limit_gib}")
        super().__init__(scope, id, body=node_pool_body(
            name=p.name, pool_labels={ROLE_LABEL: ROLE}, node_labels={ROLE_LABEL: ROLE}, node_class_name=p.node_class_name,
            instance_requirement={"key": "karpenter.k8s.aws/instance-category", "operator": "In",
                                  "values": sorted(p.instance_categories)},
            capacity_types=p.capacity_types,
            gpu_requirement={"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "DoesNotExist"},
            taint=dict(TAINT), expire_after=p.expire_after, termination_grace_period="1h",
            limits={"cpu": p.cpu_limit, "memory": f"{p.memory_limit_gib}Gi"},
            consolidate_after=p.consolidate_after, disruption_budget_nodes=p.disruption_budget_nodes))
