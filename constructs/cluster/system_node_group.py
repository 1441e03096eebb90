"""`SystemNodeGroup`: a small managed node group for cluster controllers (Karpenter, Kueue, CoreDNS).

GPU capacity is never here: Karpenter launches it. Nodes get IMDSv2-only launch templates and a
node role with the three AWS-managed worker policies; their access entry is created by EKS.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktn import Token
from constructs import Construct
from cdktn_provider_aws.eks_addon import EksAddon
from cdktn_provider_aws.eks_node_group import EksNodeGroup
from cdktn_provider_aws.iam_role import IamRole
from cdktn_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktn_provider_aws.launch_template import LaunchTemplate

from ..iam import service_trust
from ..jsii_structs import struct_list
from .eks_cluster import EksCluster

NODE_POLICIES = ["AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly"]


@dataclass(frozen=True)
class SystemNodeGroupProps:
    name: str
    subnet_ids: list[str]
    instance_types: list[str]
    min_size: int
    max_size: int
    desired_size: int


class SystemNodeGroup(Construct):
    """Creates the node `aws_iam_role` with its policy attachments, an `aws_launch_template` (IMDSv2
    only, hop limit 1, encrypted root volume), `aws_eks_node_group` tainted `CriticalAddonsOnly`, and
    the CoreDNS `aws_eks_addon` (it needs nodes to become healthy)."""

    def __init__(self, scope: Construct, id: str, *, cluster: EksCluster, props: SystemNodeGroupProps) -> None:
        super().__init__(scope, id)
        role = IamRole(self, "role", name=f"{props.name}-system-nodes", assume_role_policy=service_trust("ec2.amazonaws.com"))
        self.node_role = role
        for p in NODE_POLICIES:
            IamRolePolicyAttachment(self, p, role=role.name, policy_arn=f"arn:aws:iam::aws:policy/{p}")
        lt = LaunchTemplate(
            self, "launch-template", name=f"{props.name}-system-nodes",
            metadata_options={"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1},
            block_device_mappings=struct_list([{"device_name": "/dev/xvda", "ebs": {"volume_size": 50, "volume_type": "gp3", "encrypted": "true"}}]),
        )
        self.node_group = EksNodeGroup(
            self, "node-group", cluster_name=cluster.cluster_name, node_group_name="system", node_role_arn=role.arn,
            subnet_ids=props.subnet_ids, instance_types=props.instance_types, capacity_type="ON_DEMAND",
            scaling_config={"min_size": props.min_size, "max_size": props.max_size, "desired_size": props.desired_size},
            launch_template={"id": lt.id, "version": Token.as_string(lt.latest_version)},
            labels={"tierwise.io/node-role": "system"},
            taint=struct_list([{"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"}]),
            update_config={"max_unavailable": 1},
        )
        EksAddon(self, "coredns", cluster_name=cluster.cluster_name, addon_name="coredns",
                 configuration_values='{"tolerations":[{"key":"CriticalAddonsOnly","operator":"Exists"}]}',
                 depends_on=[self.node_group])
