"""`KarpenterPrerequisites`: the AWS side of Karpenter (the Helm release is `HelmChart` in the stack).

Mirrors terraform-aws-modules/eks `modules/karpenter`: a controller role bound by Pod Identity to
`kube-system/karpenter` with scoped statements, an encrypted SQS interruption queue fed by four
EventBridge rules, and the node role with its EC2_LINUX access entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from constructs import Construct
from cdktn_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktn_provider_aws.cloudwatch_event_target import CloudwatchEventTarget
from cdktn_provider_aws.eks_access_entry import EksAccessEntry
from cdktn_provider_aws.iam_role import IamRole
from cdktn_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktn_provider_aws.sqs_queue import SqsQueue
from cdktn_provider_aws.sqs_queue_policy import SqsQueuePolicy

from ..iam import Statement, service_trust
from ..identity.workload_identity import WorkloadIdentity, WorkloadIdentityProps

INTERRUPTION_EVENTS = {
    "health": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
    "spot-interruption": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
    "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    "state-change": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
}


@dataclass(frozen=True)
class KarpenterPrerequisitesProps:
    name: str
    account_id: str
    region: str
    cluster_name: str
    cluster_arn: str
    namespace: str = "kube-system"
    service_account: str = "karpenter"


class KarpenterPrerequisites(Construct):
    """Creates the controller `WorkloadIdentity`, the interruption `aws_sqs_queue` + `aws_sqs_queue_policy`,
    four `aws_cloudwatch_event_rule` + `aws_cloudwatch_event_target`, the node `aws_iam_role` with the
    worker policies, and its `aws_eks_access_entry` (EC2_LINUX)."""

    def __init__(self, scope: Construct, id: str, *, props: KarpenterPrerequisitesProps) -> None:
        super().__init__(scope, id)
        p = props
        self.queue = SqsQueue(self, "interruption-queue", name=f"{p.name}-karpenter", message_retention_seconds=300,
                              sqs_managed_sse_enabled=True)
        SqsQueuePolicy(self, "queue-policy", queue_url=self.queue.url, policy=json.dumps({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "EventBridgeSends", "Effect": "Allow",
                 "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
                 "Action": "sqs:SendMessage", "Resource": self.queue.arn},
                {"Sid": "DenyHTTP", "Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": self.queue.arn,
                 "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            ]}, sort_keys=True))
        for rule_id, pattern in INTERRUPTION_EVENTS.items():
            rule = CloudwatchEventRule(self, f"{rule_id}-rule", name=f"{p.name}-karpenter-{rule_id}",
                                       event_pattern=json.dumps(pattern, sort_keys=True))
            CloudwatchEventTarget(self, f"{rule_id}-target", rule=rule.name, target_id="KarpenterInterruptionQueue",
                                  arn=self.queue.arn)

        self.node_role = IamRole(self, "node-role", name=f"{p.name}-karpenter-nodes", assume_role_policy=service_trust("ec2.amazonaws.com"))
        for pol in ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly", "AmazonSSMManagedInstanceCore"):
            IamRolePolicyAttachment(self, pol, role=self.node_role.name, policy_arn=f"arn:aws:iam::aws:policy/{pol}")
        EksAccessEntry(self, "node-access", cluster_name=p.cluster_name, principal_arn=self.node_role.arn, type="EC2_LINUX")

        ec2 = f"arn:aws:ec2:{p.region}"
        owned = {"StringEquals": {f"aws:ResourceTag/kubernetes.io/cluster/{p.cluster_name}": "owned"},
                 "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}}
        request_tagged = {"StringEquals": {f"aws:RequestTag/kubernetes.io/cluster/{p.cluster_name}": "owned"},
                          "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}
        statements = [
            Statement(["ec2:RunInstances", "ec2:CreateFleet"],
                      [f"{ec2}::image/*", f"{ec2}::snapshot/*", f"{ec2}:*:security-group/*", f"{ec2}:*:subnet/*",
                       f"{ec2}:*:capacity-reservation/*"], sid="AllowScopedEC2InstanceAccessActions"),
            Statement(["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
                      [f"{ec2}:*:fleet/*", f"{ec2}:*:instance/*", f"{ec2}:*:volume/*", f"{ec2}:*:network-interface/*",
                       f"{ec2}:*:launch-template/*", f"{ec2}:*:spot-instances-request/*"],
                      sid="AllowScopedEC2InstanceActionsWithTags", conditions=request_tagged),
            Statement(["ec2:CreateTags"],
                      [f"{ec2}:*:fleet/*", f"{ec2}:*:instance/*", f"{ec2}:*:volume/*", f"{ec2}:*:network-interface/*",
                       f"{ec2}:*:launch-template/*", f"{ec2}:*:spot-instances-request/*"],
                      sid="AllowScopedResourceCreationTagging",
                      conditions={**request_tagged, "StringEqualsIfExists": {"ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"]}}),
            Statement(["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
                      [f"{ec2}:*:instance/*", f"{ec2}:*:launch-template/*"], sid="AllowScopedDeletion", conditions=owned),
            Statement(["ec2:DescribeAvailabilityZones", "ec2:DescribeImages", "ec2:DescribeInstances",
                       "ec2:DescribeInstanceTypeOfferings", "ec2:DescribeInstanceTypes", "ec2:DescribeLaunchTemplates",
                       "ec2:DescribeSecurityGroups", "ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets",
                       "ec2:DescribeCapacityReservations"],
                      ["*"], sid="AllowRegionalReadActions", conditions={"StringEquals": {"aws:RequestedRegion": p.region}}),
            Statement(["ssm:GetParameter"], [f"arn:aws:ssm:{p.region}::parameter/aws/service/*"], sid="AllowSSMReadActions"),
            Statement(["pricing:GetProducts"], ["*"], sid="AllowPricingReadActions"),
            Statement(["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"], [self.queue.arn], sid="AllowInterruptionQueueActions"),
            Statement(["iam:PassRole"], [self.node_role.arn], sid="AllowPassingInstanceRole",
                      conditions={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}),
            Statement(["iam:CreateInstanceProfile", "iam:TagInstanceProfile", "iam:AddRoleToInstanceProfile",
                       "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"],
                      [f"arn:aws:iam::{p.account_id}:instance-profile/*"], sid="AllowScopedInstanceProfileActions",
                      conditions={"StringEquals": {f"aws:ResourceTag/kubernetes.io/cluster/{p.cluster_name}": "owned",
                                                   "aws:ResourceTag/topology.kubernetes.io/region": p.region}}),
            Statement(["iam:GetInstanceProfile"], [f"arn:aws:iam::{p.account_id}:instance-profile/*"], sid="AllowInstanceProfileReadActions"),
            Statement(["eks:DescribeCluster"], [p.cluster_arn], sid="AllowAPIServerEndpointDiscovery"),
        ]
        self.controller = WorkloadIdentity(self, "controller", props=WorkloadIdentityProps(
            name=f"{p.name}-karpenter", account_id=p.account_id, cluster_name=p.cluster_name, cluster_arn=p.cluster_arn,
            namespace=p.namespace, service_account=p.service_account, statements=statements,
            tags={"team": "shared", "tierwise.io/workload": "karpenter"}))

    @property
    def node_role_name(self) -> str:
        return self.node_role.name

    @property
    def queue_name(self) -> str:
        return self.queue.name
