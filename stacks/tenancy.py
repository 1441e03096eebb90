"""tenancy: the custom resources that turn the environment's pools and teams into cluster policy —
GPU NodePools and their EC2NodeClasses, MIG ResourceClaimTemplates, team namespaces (default deny),
Kueue ResourceFlavors, ClusterQueues and LocalQueues. Deployed after `capacity` and `platform`,
whose Helm charts install the CRDs these objects need."""

from __future__ import annotations

from constructs import Construct

from tierwise.config.pools import GpuPool, MigSharing, TimeSliceSharing
from tierwise.config.slices import TenancySlice
from tierwise.constructs.capacity.gpu_node_class import GpuNodeClass, GpuNodeClassProps
from tierwise.constructs.capacity.gpu_node_pool import ADVERTISER_LABEL, DEVICE_PLUGIN_DEPLOY_LABEL, GpuNodePool, GpuNodePoolProps
from tierwise.constructs.capacity.mig_claim_template import MigClaimTemplate, MigClaimTemplateProps
from tierwise.constructs.kubernetes import KubernetesObject
from tierwise.constructs.platform.gpu_resource_flavor import GpuResourceFlavor, GpuResourceFlavorProps
from tierwise.constructs.platform.team_namespace import TeamNamespace, TeamNamespaceProps
from tierwise.constructs.platform.team_queue import MIG_RESOURCE, FlavorQuota, TeamQueue, TeamQueueProps

from .base import InClusterStack
from .capacity import CapacityStack
from .cluster import ClusterStack


def quota_resource(pool: GpuPool) -> str:
    return MIG_RESOURCE if isinstance(pool.sharing, MigSharing) else "nvidia.com/gpu"


class TenancyStack(InClusterStack):
    layer = "tenancy"

    def __init__(self, scope: Construct, env: TenancySlice, *, cluster: ClusterStack, capacity: CapacityStack) -> None:
        super().__init__(scope, env, cluster=cluster.eks)
        eks = cluster.eks
        pools = Construct(self, "gpu-pools")
        for pool in env.gpu_pools.values():
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
                sharing=pool.sharing.mode, units_per_gpu=pool.units_per_gpu, consolidate_after=pool.consolidate_after,
                disruption_budget_nodes=pool.disruption_budget_nodes, extra_labels=extra))
            GpuResourceFlavor(scope_, "flavor", props=GpuResourceFlavorProps(pool=pool.name))

        serving = KubernetesObject(self, "serving-namespace", body={
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": env.serving_namespace, "labels": {"tierwise.io/team": "shared",
                                                                "pod-security.kubernetes.io/enforce": "baseline"}}})
        for profile in env.mig_profiles:
            rct = MigClaimTemplate(self, f"mig-{profile}", props=MigClaimTemplateProps(profile=profile,
                                                                                     namespace=env.serving_namespace))
            rct.manifest.node.add_dependency(serving.manifest)

        for team in env.teams:
            t = Construct(self, f"team-{team.name}")
            nss = [TeamNamespace(t, ns, props=TeamNamespaceProps(name=ns, team=team.name, cost_center=team.cost_center))
                   for ns in team.namespaces]
            quotas = []
            for pool_name, gpus in sorted(team.gpu_quota.items()):
                pool = env.gpu_pools[pool_name]
                cpu, mem = pool.host_share(gpus)
                quotas.append(FlavorQuota(flavor=pool_name, resource=quota_resource(pool), units=gpus * pool.units_per_gpu,
                                          cpu=cpu, memory_gib=mem))
            queue = TeamQueue(t, "queue", props=TeamQueueProps(team=team.name, namespaces=team.namespaces, quotas=quotas))
            for ns in nss:
                queue.node.add_dependency(ns)
