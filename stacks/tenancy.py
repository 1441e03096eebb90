"""tenancy: the custom resources that turn the environment's pools and teams into cluster policy —
GPU NodePools and their EC2NodeClasses, MIG ResourceClaimTemplates, team namespaces (default deny),
Kueue ResourceFlavors, ClusterQueues and LocalQueues. Deployed after `capacity` and `platform`,
whose Helm charts install the CRDs these objects need."""

from __future__ import annotations

from constructs import Construct

from tierwise.config import Environment
from tierwise.config.hardware import FAMILIES
from tierwise.config.model import GpuPool, MigSharing, TimeSliceSharing
from tierwise.constructs.capacity.gpu_node_class import GpuNodeClass, GpuNodeClassProps
from tierwise.constructs.capacity.gpu_node_pool import ADVERTISER_LABEL, DEVICE_PLUGIN_DEPLOY_LABEL, GpuNodePool, GpuNodePoolProps
from tierwise.constructs.capacity.mig_claim_template import MigClaimTemplate, MigClaimTemplateProps
from tierwise.constructs.kubernetes import KubernetesObject
from tierwise.constructs.platform.gpu_resource_flavor import GpuResourceFlavor, GpuResourceFlavorProps
from tierwise.constructs.platform.team_namespace import TeamNamespace, TeamNamespaceProps
from tierwise.constructs.platform.team_queue import MIG_RESOURCE, FlavorQuota, TeamQueue, TeamQueueProps

from .base import TierwiseStack
from .capacity import CapacityStack
from .cluster import ClusterStack

SERVING_NAMESPACE = "tierwise-serving"


def units_per_gpu(pool: GpuPool) -> int:
    if isinstance(pool.sharing, MigSharing):
        return sum(pool.sharing.layout.values())
    if isinstance(pool.sharing, TimeSliceSharing):
        return pool.sharing.replicas_per_gpu
    return 1


def quota_resource(pool: GpuPool) -> str:
    return MIG_RESOURCE if isinstance(pool.sharing, MigSharing) else "nvidia.com/gpu"


def host_share(pool: GpuPool, gpus: int) -> tuple[int, int]:
    """CPU and memory (GiB) that `gpus` GPUs of this pool bring along on the smallest-ratio size."""
    sizes = [s for f in pool.instance_families for s in FAMILIES[f].sizes]
    cpu = min(s.vcpus / s.gpus for s in sizes)
    mem = min(s.memory_gib / s.gpus for s in sizes)
    return int(cpu * gpus), int(mem * gpus)


class TenancyStack(TierwiseStack):
    layer = "tenancy"

    def __init__(self, scope: Construct, env: Environment, *, cluster: ClusterStack, capacity: CapacityStack) -> None:
        super().__init__(scope, env)
        eks = cluster.eks
        self.use_cluster(eks.cluster_name, eks.cluster_endpoint, eks.cluster_ca_data)
        pools = Construct(self, "gpu-pools")
        for pool in env.gpu_pools:
            scope_ = Construct(pools, pool.name)
            GpuNodeClass(scope_, "node-class", props=GpuNodeClassProps(
                name=pool.name, cluster_name=eks.cluster_name, node_role_name=capacity.karpenter.node_role_name, disk_gib=pool.disk_gib))
            extra: dict[str, str] = {ADVERTISER_LABEL: "device-plugin"}
            if isinstance(pool.sharing, MigSharing):
                # MIG slices go through DRA only: the device plugin is off, the DRA kubelet plugin selects this label.
                extra = {"nvidia.com/mig.config": pool.name, DEVICE_PLUGIN_DEPLOY_LABEL: "false", ADVERTISER_LABEL: "dra"}
            elif isinstance(pool.sharing, TimeSliceSharing):
                extra = {"nvidia.com/device-plugin.config": pool.name, ADVERTISER_LABEL: "device-plugin"}
            GpuNodePool(scope_, "node-pool", props=GpuNodePoolProps(
                name=pool.name, node_class_name=pool.name, instance_families=pool.instance_families,
                capacity_types=pool.capacity_types, gpu_limit=pool.gpu_limit, cpu_limit=pool.effective_cpu_limit,
                sharing=pool.sharing.mode, units_per_gpu=units_per_gpu(pool), consolidate_after=pool.consolidate_after,
                disruption_budget_nodes=pool.disruption_budget_nodes, extra_labels=extra))
            GpuResourceFlavor(scope_, "flavor", props=GpuResourceFlavorProps(pool=pool.name))

        serving = KubernetesObject(self, "serving-namespace", body={
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": SERVING_NAMESPACE, "labels": {"tierwise.io/team": "shared",
                                                                "pod-security.kubernetes.io/enforce": "baseline"}}})
        profiles = sorted({m.gpu.profile for m in env.models if m.gpu.kind == "mig"})
        for profile in profiles:
            rct = MigClaimTemplate(self, f"mig-{profile}", props=MigClaimTemplateProps(profile=profile, namespace=SERVING_NAMESPACE))
            rct.manifest.node.add_dependency(serving.manifest)

        for team in env.teams:
            t = Construct(self, f"team-{team.name}")
            nss = [TeamNamespace(t, ns, props=TeamNamespaceProps(name=ns, team=team.name, cost_center=team.cost_center))
                   for ns in team.namespaces]
            quotas = []
            for pool_name, gpus in sorted(team.gpu_quota.items()):
                pool = env.pool(pool_name)
                cpu, mem = host_share(pool, gpus)
                quotas.append(FlavorQuota(flavor=pool_name, resource=quota_resource(pool), units=gpus * units_per_gpu(pool),
                                          cpu=cpu, memory_gib=mem))
            queue = TeamQueue(t, "queue", props=TeamQueueProps(team=team.name, namespaces=team.namespaces, quotas=quotas))
            for ns in nss:
                queue.node.add_dependency(ns)
