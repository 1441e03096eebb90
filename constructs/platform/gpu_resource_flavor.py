"""`GpuResourceFlavor`: the Kueue ResourceFlavor that stands for one GPU pool's nodes."""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct

from ..capacity.gpu_node_pool import GPU_TAINT, POOL_LABEL
from ..kubernetes import KubernetesObject


@dataclass(frozen=True)
class GpuResourceFlavorProps:
    pool: str


class GpuResourceFlavor(KubernetesObject):
    """Creates one `kueue.x-k8s.io/v1beta2` ResourceFlavor selecting the pool's nodes and tolerating the GPU taint."""

    def __init__(self, scope: Construct, id: str, *, props: GpuResourceFlavorProps) -> None:
        super().__init__(scope, id, body={
            "apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor",
            "metadata": {"name": props.pool, "labels": {POOL_LABEL: props.pool}},
            "spec": {"nodeLabels": {POOL_LABEL: props.pool},
                     "tolerations": [{"key": GPU_TAINT["key"], "operator": "Equal", "value": GPU_TAINT["value"],
                                      "effect": GPU_TAINT["effect"]}]},
        })
