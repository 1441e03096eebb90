"""`GpuNodePool`: one Karpenter NodePool per GPU pool of the environment.

GPU nodes carry the `nvidia.com/gpu` NoSchedule taint (only GPU workloads tolerate it), tier and
pool labels, and hard **GPU and CPU limits** — the ceiling the cost gate multiplies by price.
Consolidation waits `consolidate_after` after the last pod scheduled on a node, so a node whose
model server is still loading weights is not consolidated; serving pods also carry
`karpenter.sh/do-not-disrupt` (see the serving stack) and the disruption budget caps churn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from constructs import Construct

from ..kubernetes import KubernetesObject
from .node_pool import node_pool_body

POOL_LABEL = "tierwise.io/pool"
SHARING_LABEL = "tierwise.io/gpu-sharing"
#: Schedulable units one physical GPU yields: 1 (full), MIG slices per GPU, or time-sliced replicas.
UNITS_LABEL = "tierwise.io/gpu-units-per-gpu"
#: Which component advertises this pool's GPUs to the kubelet: `dra` (NVIDIA DRA kubelet plugin, MIG pools) or
#: `device-plugin` (NVIDIA device plugin: full and time-sliced pools). Exactly one of them may run on a node, or
#: both advertise the same GPUs; the DRA driver's kubelet plugin selects on this label.
ADVERTISER_LABEL = "tierwise.io/gpu-advertiser"
#: The GPU operator skips its device plugin on nodes labelled with this set to "false".
DEVICE_PLUGIN_DEPLOY_LABEL = "nvidia.com/gpu.deploy.device-plugin"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}


@dataclass(frozen=True)
class GpuNodePoolProps:
    name: str
    node_class_name: str
    instance_families: list[str]
    capacity_types: list[str]
    gpu_limit: int
    cpu_limit: int
    sharing: str  # full | mig | timeslice
    units_per_gpu: int = 1
    consolidate_after: str = "10m"
    disruption_budget_nodes: str = "10%"
    expire_after: str = "720h"
    extra_labels: dict[str, str] = field(default_factory=dict)


class GpuNodePool(KubernetesObject):
    """Creates one `karpenter.sh/v1` NodePool."""

    def __init__(self, scope: Construct, id: str, *, props: GpuNodePoolProps) -> None:
        if props.gpu_limit < 1:
            raise ValueError(f"GpuNodePool {props.name}: gpu_limit must be >= 1 (an unlimited GPU pool has no cost ceiling)")
        labels = {POOL_LABEL: props.name, SHARING_LABEL: props.sharing, UNITS_LABEL: str(props.units_per_gpu),
                  **props.extra_labels}
        super().__init__(scope, id, body=node_pool_body(
            name=props.name, pool_labels={POOL_LABEL: props.name}, node_labels=labels,
            node_class_name=props.node_class_name,
            instance_requirement={"key": "karpenter.k8s.aws/instance-family", "operator": "In",
                                  "values": sorted(props.instance_families)},
            capacity_types=props.capacity_types,
            gpu_requirement={"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Gt", "values": ["0"]},
            taint=GPU_TAINT, expire_after=props.expire_after, termination_grace_period="2h",
            limits={"nvidia.com/gpu": props.gpu_limit, "cpu": props.cpu_limit},
            consolidate_after=props.consolidate_after, disruption_budget_nodes=props.disruption_budget_nodes))
