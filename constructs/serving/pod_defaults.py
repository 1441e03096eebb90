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
#: UID/GID every serving container runs as: above 9999 so it never collides with a host user (CKV_K8S_40),
#: and the user the service images create (`workloads/*/Dockerfile`: `useradd --uid 10001`).
DEFAULT_UID = 10001
#: Always ask the registry: a pod can only start an image its own pull credentials allow, even when a
#: node already caches it (images are immutable-tagged, so this is a manifest check, not a re-download).
IMAGE_PULL_POLICY = "Always"


def selector(name: str) -> dict[str, str]:
    """The one label that selects a workload's pods."""
    return {NAME_LABEL: name}


def labels(name: str, component: str, team: str = "shared") -> dict[str, str]:
    return {NAME_LABEL: name, COMPONENT_LABEL: component, TEAM_LABEL: team, **PART_OF}


def pod_security(uid: int = DEFAULT_UID) -> dict[str, Any]:
    """Pod-level restricted context: non-root with a high UID/GID, RuntimeDefault seccomp."""
    if uid < 10000:
        raise ValueError(f"pod_security: uid must be >= 10000 (no collision with host users), got {uid}")
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"}}


def container_security(read_only_root: bool = True, uid: int = DEFAULT_UID) -> dict[str, Any]:
    """Container-level restricted context. It repeats runAsNonRoot/runAsUser/seccomp of the pod, so the
    container stays hardened even if copied into a pod spec without `pod_security()`."""
    if uid < 10000:
        raise ValueError(f"container_security: uid must be >= 10000 (no collision with host users), got {uid}")
    return {"allowPrivilegeEscalation": False, "privileged": False, "readOnlyRootFilesystem": read_only_root,
            "runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def resources(cpu: str, memory: str, cpu_limit: str | None = None, **extra: Any) -> dict[str, Any]:
    """Requests and limits for one container: memory limit = request (no overcommit, no OOM surprises on
    the node), CPU limit = `cpu_limit`, or the request when omitted (Guaranteed QoS: a busy pod cannot
    starve its neighbours). `extra` (e.g. `nvidia.com/gpu`) goes into both requests and limits."""
    return {"requests": {"cpu": cpu, "memory": memory, **extra},
            "limits": {"cpu": cpu_limit or cpu, "memory": memory, **extra}}


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
