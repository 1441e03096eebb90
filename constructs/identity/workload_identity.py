"""`WorkloadIdentity`: one IAM role for exactly one Kubernetes service account, via EKS Pod Identity.

Each workload gets its own role (never shared), trusted only by the Pod Identity service for this
account and cluster, and bound by one `aws_eks_pod_identity_association` to one namespace/service
account. Permissions are the statements passed in: least privilege is the caller's job, and the
policy gate (TW-IAM-001/002) proves it on the synthesized output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from constructs import Construct
from cdktn_provider_aws.eks_pod_identity_association import EksPodIdentityAssociation
from cdktn_provider_aws.iam_role import IamRole
from cdktn_provider_aws.iam_role_policy import IamRolePolicy

from ..iam import Statement, policy_document, service_trust


@dataclass(frozen=True)
class WorkloadIdentityProps:
    name: str
    account_id: str
    cluster_name: str
    cluster_arn: str
    namespace: str
    service_account: str
    statements: list[Statement] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)


class WorkloadIdentity(Construct):
    """Creates `aws_iam_role` (Pod Identity trust), `aws_iam_role_policy` (when statements are given)
    and `aws_eks_pod_identity_association`."""

    def __init__(self, scope: Construct, id: str, *, props: WorkloadIdentityProps) -> None:
        super().__init__(scope, id)
        trust = service_trust(
            "pods.eks.amazonaws.com",
            {"StringEquals": {"aws:SourceAccount": props.account_id}, "ArnEquals": {"aws:SourceArn": props.cluster_arn}},
            actions=["sts:AssumeRole", "sts:TagSession"],
        )
        self.role = IamRole(self, "role", name=props.name, assume_role_policy=trust, tags={
            **props.tags, "tierwise.io/namespace": props.namespace, "tierwise.io/service-account": props.service_account})
        if props.statements:
            IamRolePolicy(self, "policy", role=self.role.id, name=f"{props.name}-scoped", policy=policy_document(props.statements))
        self.association = EksPodIdentityAssociation(
            self, "association", cluster_name=props.cluster_name, namespace=props.namespace,
            service_account=props.service_account, role_arn=self.role.arn, tags=props.tags)

    @property
    def role_arn(self) -> str:
        return self.role.arn
