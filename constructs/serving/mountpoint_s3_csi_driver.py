"""`MountpointS3CsiDriver`: the Mountpoint for Amazon S3 CSI driver as an EKS add-on, with its own identity.

It lives in the serving stack rather than the cluster stack because the only buckets it may read (models and
adapters) are defined here: the driver's role is scoped to exactly those buckets' ARNs and prefixes. The model
servers' volumes mount with `authenticationSource: pod` (`S3Mount`), so each server still reads with its own
narrower role; the driver's role is the fallback for volumes that use driver-level credentials.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from constructs import Construct
from cdktn_provider_aws.eks_addon import EksAddon

from ..iam import Statement
from ..identity.workload_identity import WorkloadIdentity, WorkloadIdentityProps

ADDON_NAME = "aws-mountpoint-s3-csi-driver"
#: Namespace and service account the add-on's controller and node plugin run as.
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "s3-csi-driver-sa"


@dataclass(frozen=True)
class MountpointS3CsiDriverProps:
    role_name: str
    account_id: str
    cluster_name: str
    cluster_arn: str
    #: Read-only statements of the driver's role (from `DataBucket.grant_read`); a role without a policy when empty.
    statements: list[Statement] = field(default_factory=list)
    #: Add-on version; EKS picks the default version for the cluster's Kubernetes version when omitted.
    addon_version: str | None = None


class MountpointS3CsiDriver(Construct):
    """Creates a `WorkloadIdentity` for `kube-system/s3-csi-driver-sa` and the `aws_eks_addon`
    `aws-mountpoint-s3-csi-driver`, whose node plugin tolerates every taint (GPU nodes are tainted)."""

    def __init__(self, scope: Construct, id: str, *, props: MountpointS3CsiDriverProps) -> None:
        super().__init__(scope, id)
        p = props
        self.identity = WorkloadIdentity(self, "identity", props=WorkloadIdentityProps(
            name=p.role_name, account_id=p.account_id, cluster_name=p.cluster_name, cluster_arn=p.cluster_arn,
            namespace=NAMESPACE, service_account=SERVICE_ACCOUNT, statements=list(p.statements),
            tags={"tierwise.io/workload": ADDON_NAME}))
        self.addon = EksAddon(self, "addon", cluster_name=p.cluster_name, addon_name=ADDON_NAME,
                              addon_version=p.addon_version, resolve_conflicts_on_update="OVERWRITE",
                              configuration_values=json.dumps({"node": {"tolerateAllTaints": True}}, sort_keys=True),
                              depends_on=[self.identity.association])
