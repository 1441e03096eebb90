"""`GpuNodeClass`: the Karpenter EC2NodeClass GPU nodes launch from (NVIDIA-capable AL2023 AMI)."""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct

from ..kubernetes import KubernetesObject


@dataclass(frozen=True)
class GpuNodeClassProps:
    name: str
    cluster_name: str
    node_role_name: str
    disk_gib: int = 500
    #: Karpenter AMI alias; AL2023 resolves to its NVIDIA variant on GPU instance types.
    ami_alias: str = "al2023@latest"


class GpuNodeClass(KubernetesObject):
    """Creates one `karpenter.k8s.aws/v1` EC2NodeClass: IMDSv2 only (hop limit 1), encrypted gp3 root
    volume, node subnets found by the `karpenter.sh/discovery` tag."""

    def __init__(self, scope: Construct, id: str, *, props: GpuNodeClassProps) -> None:
        super().__init__(scope, id, body={
            "apiVersion": "karpenter.k8s.aws/v1",
            "kind": "EC2NodeClass",
            "metadata": {"name": props.name},
            "spec": {
                "role": props.node_role_name,
                "amiSelectorTerms": [{"alias": props.ami_alias}],
                "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": props.cluster_name}}],
                # EKS tags the cluster security group it creates with aws:eks:cluster-name.
                "securityGroupSelectorTerms": [{"tags": {"aws:eks:cluster-name": props.cluster_name}}],
                "metadataOptions": {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled",
                                    "httpPutResponseHopLimit": 1, "httpTokens": "required"},
                "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {
                    "volumeSize": f"{props.disk_gib}Gi", "volumeType": "gp3", "encrypted": True, "deleteOnTermination": True}}],
                "tags": {"karpenter.sh/discovery": props.cluster_name},
            },
        })
