"""`VpcFlowLogs`: every accepted and rejected flow of the VPC into an encrypted CloudWatch log group."""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct
from cdktn_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktn_provider_aws.flow_log import FlowLog
from cdktn_provider_aws.iam_role import IamRole
from cdktn_provider_aws.iam_role_policy import IamRolePolicy

from ..encryption_key import EncryptionKey
from ..iam import Statement, policy_document, service_trust
from .vpc import EgressVpc


@dataclass(frozen=True)
class VpcFlowLogsProps:
    name: str
    account_id: str
    retention_days: int
    log_key: EncryptionKey


class VpcFlowLogs(Construct):
    """Creates `aws_cloudwatch_log_group`, the delivery `aws_iam_role` (write to that group only) and `aws_flow_log` (ALL)."""

    def __init__(self, scope: Construct, id: str, *, vpc: EgressVpc, props: VpcFlowLogsProps) -> None:
        super().__init__(scope, id)
        self.log_group = CloudwatchLogGroup(self, "logs", name=f"/tierwise/{props.name}/vpc-flow-logs",
                                            retention_in_days=props.retention_days, kms_key_id=props.log_key.key_arn)
        role = IamRole(self, "role", name=f"{props.name}-vpc-flow-logs",
                       assume_role_policy=service_trust("vpc-flow-logs.amazonaws.com",
                                                        {"StringEquals": {"aws:SourceAccount": props.account_id}}))
        IamRolePolicy(self, "policy", role=role.id, name="deliver-flow-logs", policy=policy_document([
            Statement(["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                      [self.log_group.arn, f"{self.log_group.arn}:*"], sid="DeliverToOwnGroup")]))
        FlowLog(self, "flow-log", vpc_id=vpc.vpc_id, traffic_type="ALL", log_destination_type="cloud-watch-logs",
                log_destination=self.log_group.arn, iam_role_arn=role.arn, max_aggregation_interval=60)
