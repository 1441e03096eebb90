"""`TierwiseStack`: the common frame of every stack — S3 backend with locking, AWS provider with
default tags, and (for in-cluster layers) Kubernetes and Helm providers authenticated through
`aws eks get-token`. Stacks compose constructs; they define no raw resources (STYLE §5).

A stack receives its slice of the environment (`tierwise.config.slices`), never the whole `Environment`;
`InClusterStack` is the frame of the layers that also talk to the Kubernetes API."""

from __future__ import annotations

from typing import Any

from cdktn import Fn, S3Backend, TerraformStack
from constructs import Construct
from cdktn_provider_aws.provider import AwsProvider
from cdktn_provider_helm.provider import HelmProvider
from cdktn_provider_kubernetes.provider import KubernetesProvider

from tierwise.config.slices import StackSlice
from tierwise.constructs.cluster.eks_cluster import EksCluster
from tierwise.constructs.jsii_structs import struct_list

SHARED_TEAM = "shared"
PLATFORM_COST_CENTER = "platform"


def stack_id(env: StackSlice, layer: str) -> str:
    """`<env>-<layer>`: also the remote-state key. Never change it after the first deploy."""
    return f"{env.name}-{layer}"


def default_tags(env: StackSlice) -> dict[str, str]:
    return {
        "environment": env.name,
        "team": SHARED_TEAM,
        "cost-center": env.tags.get("cost-center", PLATFORM_COST_CENTER),
        "managed-by": "tierwise",
        **{k: v for k, v in sorted(env.tags.items()) if k != "cost-center"},
    }


class TierwiseStack(TerraformStack):
    layer: str = ""

    def __init__(self, scope: Construct, env: StackSlice) -> None:
        super().__init__(scope, stack_id(env, self.layer))
        self.env = env
        s = env.state
        backend: dict[str, Any] = {
            "bucket": s.bucket, "key": f"{s.key_prefix}/{stack_id(env, self.layer)}.tfstate",
            "region": s.region or env.region, "encrypt": True,
        }
        if s.dynamodb_table:
            backend["dynamodb_table"] = s.dynamodb_table
        else:
            backend["use_lockfile"] = s.use_lockfile
        if s.kms_key_id:
            backend["kms_key_id"] = s.kms_key_id
        S3Backend(self, **backend)
        AwsProvider(self, "aws", region=env.region, allowed_account_ids=[env.account_id],
                    default_tags=struct_list([{"tags": default_tags(env)}]))



class InClusterStack(TierwiseStack):
    """A layer that also creates Kubernetes objects and Helm releases: the Kubernetes and Helm providers point at
    `cluster`'s EKS API (token from `aws eks get-token`)."""

    def __init__(self, scope: Construct, env: StackSlice, *, cluster: EksCluster) -> None:
        super().__init__(scope, env)
        self.eks = cluster
        exec_ = {"api_version": "client.authentication.k8s.io/v1beta1", "command": "aws",
                 "args": ["eks", "get-token", "--cluster-name", cluster.cluster_name, "--region", env.region]}
        ca = Fn.base64decode(cluster.cluster_ca_data)
        KubernetesProvider(self, "kubernetes", host=cluster.cluster_endpoint, cluster_ca_certificate=ca,
                           exec=struct_list([exec_]))
        HelmProvider(self, "helm", kubernetes={"host": cluster.cluster_endpoint, "cluster_ca_certificate": ca, "exec": exec_})

    @property
    def identity(self) -> dict[str, str]:
        """Account and cluster of a Pod Identity role (the props every workload identity takes)."""
        return {"account_id": self.env.account_id, "cluster_name": self.eks.cluster_name, "cluster_arn": self.eks.cluster_arn}
