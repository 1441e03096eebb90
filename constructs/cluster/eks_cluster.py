"""`EksCluster`: the EKS control plane, hardened by default.

Private API endpoint only (public off unless the environment says so, with explicit CIDRs),
envelope encryption of secrets with a rotating customer-managed key, every control-plane log type
into an encrypted log group, access entries instead of the aws-auth ConfigMap, and the add-ons the
platform relies on: EKS Pod Identity agent, VPC CNI with network-policy enforcement, CoreDNS, kube-proxy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from constructs import Construct
from cdktn_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktn_provider_aws.eks_access_entry import EksAccessEntry
from cdktn_provider_aws.eks_access_policy_association import EksAccessPolicyAssociation
from cdktn_provider_aws.eks_addon import EksAddon
from cdktn_provider_aws.eks_cluster import EksCluster as AwsEksCluster
from cdktn_provider_aws.iam_role import IamRole
from cdktn_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktn_provider_aws.security_group import SecurityGroup

from ..encryption_key import EncryptionKey
from ..iam import service_trust
from ..jsii_structs import struct_list

LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]


@dataclass(frozen=True)
class EksClusterProps:
    name: str
    kubernetes_version: str
    vpc_id: str
    vpc_cidr: str
    subnet_ids: list[str]
    secrets_key: EncryptionKey
    log_key: EncryptionKey
    log_retention_days: int = 90
    endpoint_public_access: bool = False
    endpoint_public_access_cidrs: list[str] = field(default_factory=list)
    #: IAM principals granted AmazonEKSClusterAdminPolicy; nobody but the creator when omitted.
    admin_principal_arns: list[str] = field(default_factory=list)


class EksCluster(Construct):
    """Creates the cluster `aws_iam_role`, a cluster `aws_security_group`, `aws_cloudwatch_log_group`,
    `aws_eks_cluster`, `aws_eks_access_entry` + `aws_eks_access_policy_association` per admin, and
    `aws_eks_addon`s (eks-pod-identity-agent, vpc-cni with network policy, coredns, kube-proxy)."""

    def __init__(self, scope: Construct, id: str, *, props: EksClusterProps) -> None:
        super().__init__(scope, id)
        if props.endpoint_public_access and not props.endpoint_public_access_cidrs:
            raise ValueError("EksCluster: endpoint_public_access needs endpoint_public_access_cidrs")
        role = IamRole(self, "role", name=f"{props.name}-cluster",
                       assume_role_policy=service_trust("eks.amazonaws.com", actions=["sts:AssumeRole", "sts:TagSession"]))
        IamRolePolicyAttachment(self, "cluster-policy", role=role.name,
                                policy_arn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicy")
        self.security_group = SecurityGroup(
            self, "sg", name=f"{props.name}-cluster", description="EKS control plane: HTTPS from the VPC", vpc_id=props.vpc_id,
            ingress=struct_list([{"description": "Kubernetes API from the VPC", "protocol": "tcp", "from_port": 443, "to_port": 443,
                                  "cidr_blocks": [props.vpc_cidr]}]),
            egress=struct_list([{"description": "Control plane to nodes inside the VPC", "protocol": "-1", "from_port": 0, "to_port": 0,
                                 "cidr_blocks": [props.vpc_cidr]}]),
        )
        self.log_group = CloudwatchLogGroup(self, "logs", name=f"/aws/eks/{props.name}/cluster",
                                            retention_in_days=props.log_retention_days, kms_key_id=props.log_key.key_arn)
        self.cluster = AwsEksCluster(
            self, "cluster", name=props.name, version=props.kubernetes_version, role_arn=role.arn,
            vpc_config={
                "subnet_ids": props.subnet_ids, "security_group_ids": [self.security_group.id],
                "endpoint_private_access": True, "endpoint_public_access": props.endpoint_public_access,
                "public_access_cidrs": props.endpoint_public_access_cidrs or None,
            },
            encryption_config={"provider": {"key_arn": props.secrets_key.key_arn}, "resources": ["secrets"]},
            enabled_cluster_log_types=LOG_TYPES,
            access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": False},
            bootstrap_self_managed_addons=False,
            depends_on=[self.log_group],
        )
        for i, arn in enumerate(props.admin_principal_arns):
            scope_ = Construct(self, f"admin-{i}")
            entry = EksAccessEntry(scope_, "entry", cluster_name=self.cluster.name, principal_arn=arn, type="STANDARD")
            EksAccessPolicyAssociation(scope_, "policy", cluster_name=self.cluster.name, principal_arn=entry.principal_arn,
                                       policy_arn="arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
                                       access_scope={"type": "cluster"})
        self.addons = {
            "eks-pod-identity-agent": EksAddon(self, "pod-identity-agent", cluster_name=self.cluster.name, addon_name="eks-pod-identity-agent"),
            "vpc-cni": EksAddon(self, "vpc-cni", cluster_name=self.cluster.name, addon_name="vpc-cni",
                                configuration_values=json.dumps({"enableNetworkPolicy": "true"}, sort_keys=True)),
            "kube-proxy": EksAddon(self, "kube-proxy", cluster_name=self.cluster.name, addon_name="kube-proxy"),
        }

    @property
    def cluster_name(self) -> str:
        return self.cluster.name

    @property
    def cluster_arn(self) -> str:
        return self.cluster.arn

    @property
    def cluster_endpoint(self) -> str:
        return self.cluster.endpoint

    @property
    def cluster_ca_data(self) -> str:
        return self.cluster.certificate_authority.get(0).data
