"""capacity: Karpenter (AWS prerequisites + pinned Helm chart) and the NVIDIA GPU software (GPU
operator with MIG manager and time-slicing config, DRA driver). NodePools live in `tenancy`,
because Terraform cannot plan a custom resource in the state that installs its CRD."""

from __future__ import annotations

from constructs import Construct

from tierwise.config import Environment
from tierwise.config.model import MigSharing, TimeSliceSharing
from tierwise.constructs.capacity.karpenter_prerequisites import KarpenterPrerequisites, KarpenterPrerequisitesProps
from tierwise.constructs.capacity.nvidia_gpu_stack import NvidiaGpuSoftware, NvidiaGpuSoftwareProps
from tierwise.constructs.helm_chart import HelmChart, HelmChartProps

from .base import TierwiseStack
from .cluster import ClusterStack

KARPENTER_VERSION = "1.14.1"  # matches the vendored karpenter.sh CRDs
SYSTEM_PLACEMENT = {"nodeSelector": {"tierwise.io/node-role": "system"},
                    "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}]}


class CapacityStack(TierwiseStack):
    layer = "capacity"

    def __init__(self, scope: Construct, env: Environment, *, cluster: ClusterStack) -> None:
        super().__init__(scope, env)
        eks = cluster.eks
        self.use_cluster(eks.cluster_name, eks.cluster_endpoint, eks.cluster_ca_data)
        self.karpenter = KarpenterPrerequisites(self, "karpenter", props=KarpenterPrerequisitesProps(
            name=f"tierwise-{env.name}", account_id=env.account_id, region=env.region,
            cluster_name=eks.cluster_name, cluster_arn=eks.cluster_arn))
        chart = HelmChart(self, "karpenter-chart", props=HelmChartProps(
            release_name="karpenter", chart="karpenter", repository="oci://public.ecr.aws/karpenter",
            version=KARPENTER_VERSION, namespace="kube-system", create_namespace=False,
            values={"settings": {"clusterName": eks.cluster_name, "interruptionQueue": self.karpenter.queue_name},
                    "serviceAccount": {"name": "karpenter"}, "replicas": 2, **SYSTEM_PLACEMENT}))
        chart.release.node.add_dependency(self.karpenter.controller.association)
        NvidiaGpuSoftware(self, "nvidia", props=NvidiaGpuSoftwareProps(
            mig_layouts={p.name: dict(p.sharing.layout) for p in env.gpu_pools if isinstance(p.sharing, MigSharing)},
            time_slicing={p.name: p.sharing.replicas_per_gpu for p in env.gpu_pools if isinstance(p.sharing, TimeSliceSharing)}))
