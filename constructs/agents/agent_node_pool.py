"""`AgentNodePool`: the dedicated CPU Karpenter NodePool every agent runs on.

Agent nodes carry the `tierwise.io/agents` NoSchedule taint (only agent pods tolerate it) and a role
label agents select, so agents never share nodes with model servers or platform services, and hard
**CPU and memory limits** bound what a burst of queued work can launch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from constructs import Construct

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
        super().__init__(scope, id, body={
            "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
            "metadata": {"name": p.name, "labels": {ROLE_LABEL: ROLE}},
            "spec": {
                "template": {
                    "metadata": {"labels": {ROLE_LABEL: ROLE}},
                    "spec": {
                        "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": p.node_class_name},
                        "requirements": [
                            {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": sorted(p.instance_categories)},
                            {"key": "karpenter.sh/capacity-type", "operator": "In", "values": sorted(p.capacity_types)},
                            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                            {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "DoesNotExist"},
                        ],
                        "taints": [dict(TAINT)],
                        "expireAfter": p.expire_after,
                        "terminationGracePeriod": "1h",
                    },
                },
                "limits": {"cpu": p.cpu_limit, "memory": f"{p.memory_limit_gib}Gi"},
                "disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": p.consolidate_after,
                               "budgets": [{"nodes": p.disruption_budget_nodes}]},
            },
        })
