"""Shared pod conventions of the serving stack: labels, restricted security contexts, GPU placement.

Pure data helpers (no resources): every serving workload uses the same label keys, so network
policies, PDBs, Services and autoscalers select pods the same way.
"""

from __future__ import annotations

from typing import Any

NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"
PART_OF = {"app.kubernetes.io/part-of": "tierwise"}
TEAM_LABEL = "tierwise.io/team"
POOL_LABEL = "tierwise.io/pool"
#: Karpenter never voluntarily disrupts a node running a pod with this annotation.
DO_NOT_DISRUPT = {"karpenter.sh/do-not-disrupt": "true"}
#: Link-local address of the EKS Pod Identity agent (credentials endpoint on every node).
POD_IDENTITY_AGENT_CIDR = "169.254.170.23/32"


def selector(name: str) -> dict[str, str]:
    """The one label that selects a workload's pods."""
    return {NAME_LABEL: name}


def labels(name: str, component: str, team: str = "shared") -> dict[str, str]:
    return {NAME_LABEL: name, COMPONENT_LABEL: component, TEAM_LABEL: team, **PART_OF}


def pod_security(uid: int = 1000) -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"}}


def container_security(read_only_root: bool = True) -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": read_only_root,
            "capabilities": {"drop": ["ALL"]}}


def gpu_placement(pool: str) -> dict[str, Any]:
    """Node affinity to one GPU pool and the toleration for the `nvidia.com/gpu` taint its nodes carry."""
    return {
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": POOL_LABEL, "operator": "In", "values": [pool]}]}]}}},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
    }


def spread(name: str) -> list[dict[str, Any]]:
    """Spread replicas across zones, as far as capacity allows."""
    return [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
             "labelSelector": {"matchLabels": selector(name)}}]
