"""`node_pool_body`: the Karpenter `karpenter.sh/v1` NodePool manifest every pool here takes.

One EC2NodeClass reference, amd64 only, the allowed capacity types, one taint, hard limits and the
same disruption rules (consolidate when empty or underutilized after `consolidate_after`, at most
`disruption_budget_nodes` at a time). The GPU pools (`GpuNodePool`) and the agent pool (`AgentNodePool`)
differ only in the instance selector, the GPU-count rule, labels, taint and limits they pass in.
"""

from __future__ import annotations

from typing import Any


def node_pool_body(*, name: str, pool_labels: dict[str, str], node_labels: dict[str, str], node_class_name: str,
                   instance_requirement: dict[str, Any], capacity_types: list[str], gpu_requirement: dict[str, Any],
                   taint: dict[str, str], expire_after: str, termination_grace_period: str, limits: dict[str, Any],
                   consolidate_after: str, disruption_budget_nodes: str) -> dict[str, Any]:
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": name, "labels": pool_labels},
        "spec": {
            "template": {
                "metadata": {"labels": node_labels},
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": node_class_name},
                    "requirements": [
                        instance_requirement,
                        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": sorted(capacity_types)},
                        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                        gpu_requirement,
                    ],
                    "taints": [taint],
                    "expireAfter": expire_after,
                    "terminationGracePeriod": termination_grace_period,
                },
            },
            "limits": limits,
            "disruption": {
                "consolidationPolicy": "WhenEmptyOrUnderutilized",
                "consolidateAfter": consolidate_after,
                "budgets": [{"nodes": disruption_budget_nodes}],
            },
        },
    }
