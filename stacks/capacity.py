"""capacity: Karpenter (AWS prerequisites + pinned Helm chart) and the NVIDIA GPU software (GPU
operator with MIG manager and time-slicing config, DRA driver). NodePools live in `tenancy`,
because Terraform cannot plan a custom resource in the state that installs its CRD."""

from __future__ import annotations

from constructs import Construct

from tierwise.config.pools import MigSharing, TimeSliceSharing
from tierwise.config.slices import CapacitySlice
from tierwise.constructs.capacity.image_sources import ImageSources, ImageSourcesProps
from tierwise.constructs.capacity.karpenter_prerequisites import KarpenterPrerequisites, KarpenterPrerequisitesProps
from tierwise.constructs.capacity.nvidia_gpu_stack import GPU_OPERATOR_IMAGES, NvidiaGpuSoftware, NvidiaGpuSoftwareProps
from tierwise.constructs.encryption_key import EncryptionKey, EncryptionKeyProps
from tierwise.constructs.helm_chart import HelmChart, HelmChartProps

from .base import InClusterStack
from .cluster import ClusterStack

KARPENTER_VERSION = "1.14.1"  # matches the vendored karpenter.sh CRDs


class CapacityStack(InClusterStack):
    layer = "capacity"

    def __init__(self, scope: Construct, env: CapacitySlice, *, cluster: ClusterStack) -> None:
        super().__init__(scope, env, cluster=cluster.eks)
        eks = cluster.eks
        self.karpenter = KarpenterPrerequisites(self, "karpenter", props=KarpenterPrerequisitesProps(
            name=env.prefix, account_id=env.account_id, region=env.region,
            cluster_name=eks.cluster_name, cluster_arn=eks.cluster_arn))
        # -- images: one place for every upstream registry (cache rules + nvcr.io mirrors), before any chart --------
        key = EncryptionKey(self, "images-key", props=EncryptionKeyProps(
            alias=f"{env.prefix}/images", account_id=env.account_id, region=env.region,
            protect=env.protect_stateful, description="capacity: ECR mirror repositories of upstream images"))
        self.images = ImageSources(self, "images", key=key, props=ImageSourcesProps(
            account_id=env.account_id, region=env.region, credential_secrets=env.images.credential_secrets,
            mirrored=GPU_OPERATOR_IMAGES, protect=env.protect_stateful))
        self.images.grant_pull(cluster.system_nodes.node_role)
        self.images.grant_pull(self.karpenter.node_role)
        chart = HelmChart(self, "karpenter-chart", props=HelmChartProps(
            release_name="karpenter", chart="karpenter", repository="oci://public.ecr.aws/karpenter",
            version=KARPENTER_VERSION, namespace="kube-system", create_namespace=False,
            values={"settings": {"clusterName": eks.cluster_name, "interruptionQueue": self.karpenter.queue_name},
                    "serviceAccount": {"name": "karpenter"}, "replicas": 2, **env.system.helm_values(),
                    # the chart's default names public.ecr.aws with a digest of its own release; pin the tag we deploy
                    "controller": {"image": {"repository": self.images.repository("public.ecr.aws/karpenter/controller"),
                                             "tag": KARPENTER_VERSION, "digest": ""}}}))
        chart.release.node.add_dependency(self.karpenter.controller.association)
        NvidiaGpuSoftware(self, "nvidia", props=NvidiaGpuSoftwareProps(
            images=self.images,
            mig_layouts={p.name: dict(p.sharing.layout) for p in env.gpu_pools if isinstance(p.sharing, MigSharing)},
            time_slicing={p.name: p.sharing.replicas_per_gpu for p in env.gpu_pools if isinstance(p.sharing, TimeSliceSharing)}))
