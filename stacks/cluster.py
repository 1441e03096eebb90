"""cluster: EKS (private endpoint, KMS-encrypted secrets, all control-plane logs, access entries,
Pod Identity agent, VPC CNI with network policy) and the system node group."""

from __future__ import annotations

from constructs import Construct

from tierwise.config.slices import ClusterSlice
from tierwise.constructs.cluster.eks_cluster import EksCluster, EksClusterProps
from tierwise.constructs.cluster.system_node_group import SystemNodeGroup, SystemNodeGroupProps
from tierwise.constructs.encryption_key import EncryptionKey, EncryptionKeyProps

from .base import TierwiseStack
from .network import NetworkStack


class ClusterStack(TierwiseStack):
    layer = "cluster"

    def __init__(self, scope: Construct, env: ClusterSlice, *, network: NetworkStack) -> None:
        super().__init__(scope, env)
        name = env.prefix  # the EKS cluster's name (the VPC's subnets are tagged for it)
        c = env.cluster
        secrets_key = EncryptionKey(self, "secrets-key", props=EncryptionKeyProps(
            alias=f"{name}/eks-secrets", account_id=env.account_id, region=env.region,
            description="EKS secrets envelope encryption", protect=env.protect_stateful))
        log_key = EncryptionKey(self, "log-key", props=EncryptionKeyProps(
            alias=f"{name}/eks-logs", account_id=env.account_id, region=env.region, description="EKS control-plane logs",
            protect=env.protect_stateful, service_principals=[f"logs.{env.region}.amazonaws.com"]))
        self.eks = EksCluster(self, "eks", props=EksClusterProps(
            name=name, kubernetes_version=c.kubernetes_version, vpc_id=network.vpc.vpc_id, vpc_cidr=env.vpc_cidr,
            subnet_ids=network.vpc.private_subnet_ids, secrets_key=secrets_key, log_key=log_key,
            log_retention_days=c.log_retention_days, endpoint_public_access=c.endpoint_public_access,
            endpoint_public_access_cidrs=c.endpoint_public_access_cidrs, admin_principal_arns=c.admin_principal_arns))
        g = c.system_node_group
        self.system_nodes = SystemNodeGroup(self, "system-nodes", cluster=self.eks, props=SystemNodeGroupProps(
            name=name, subnet_ids=network.vpc.private_subnet_ids, instance_types=g.instance_types,
            min_size=g.min_size, max_size=g.max_size, desired_size=g.desired_size))
