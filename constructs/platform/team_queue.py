"""`TeamQueue`: a team's Kueue ClusterQueue (GPU quota per pool) and a LocalQueue in each of its namespaces.

Quotas are in the unit a pod requests on that pool: whole GPUs (`nvidia.com/gpu`) on full pools,
time-sliced shares (`nvidia.com/gpu`, GPUs x replicas) on time-sliced pools, MIG slices
(`tierwise.io/mig-slices`, mapped from the `mig.nvidia.com` DRA DeviceClass) on MIG pools. The
environment model guarantees no team's quota exceeds its pool's GPU limit; TW-COST-004 re-proves
it on the synthesized output.
"""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct

from ..kubernetes import KubernetesObject
from .team_namespace import TEAM_LABEL

MIG_RESOURCE = "tierwise.io/mig-slices"


@dataclass(frozen=True)
class FlavorQuota:
    flavor: str
    resource: str  # nvidia.com/gpu | tierwise.io/mig-slices
    units: int
    cpu: int
    memory_gib: int


@dataclass(frozen=True)
class TeamQueueProps:
    team: str
    namespaces: list[str]
    quotas: list[FlavorQuota]
    cohort: str = "tierwise"


class TeamQueue(Construct):
    """Creates one `kueue.x-k8s.io/v1beta2` ClusterQueue and one LocalQueue per team namespace."""

    def __init__(self, scope: Construct, id: str, *, props: TeamQueueProps) -> None:
        super().__init__(scope, id)
        groups = []
        for resource in sorted({q.resource for q in props.quotas}):
            qs = [q for q in props.quotas if q.resource == resource]
            groups.append({
                "coveredResources": ["cpu", "memory", resource],
                "flavors": [{"name": q.flavor, "resources": [
                    {"name": "cpu", "nominalQuota": q.cpu},
                    {"name": "memory", "nominalQuota": f"{q.memory_gib}Gi"},
                    {"name": resource, "nominalQuota": q.units, "borrowingLimit": 0},
                ]} for q in qs],
            })
        self.cluster_queue = KubernetesObject(self, "cluster-queue", body={
            "apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue",
            "metadata": {"name": props.team, "labels": {TEAM_LABEL: props.team}},
            "spec": {
                "cohortName": props.cohort,
                "namespaceSelector": {"matchLabels": {TEAM_LABEL: props.team}},
                "queueingStrategy": "BestEffortFIFO",
                "resourceGroups": groups,
                "preemption": {"reclaimWithinCohort": "Any", "withinClusterQueue": "LowerPriority"},
            },
        })
        for ns in props.namespaces:
            lq = KubernetesObject(self, f"local-{ns}", body={
                "apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue",
                "metadata": {"name": props.team, "namespace": ns, "labels": {TEAM_LABEL: props.team}},
                "spec": {"clusterQueue": props.team},
            })
            lq.manifest.node.add_dependency(self.cluster_queue.manifest)
