"""`BedrockInvocationLogging`: every Bedrock model invocation in the account logged to CloudWatch."""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct
from cdktn_provider_aws.bedrock_model_invocation_logging_configuration import BedrockModelInvocationLoggingConfiguration
from cdktn_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktn_provider_aws.iam_role import IamRole
from cdktn_provider_aws.iam_role_policy import IamRolePolicy

from ..encryption_key import EncryptionKey
from ..jsii_structs import struct_list
from ..iam import Statement, policy_document, service_trust


@dataclass(frozen=True)
class BedrockInvocationLoggingProps:
    name: str
    account_id: str
    region: str
    retention_days: int
    log_key: EncryptionKey


class BedrockInvocationLogging(Construct):
    """Creates `aws_cloudwatch_log_group`, a delivery `aws_iam_role` + `aws_iam_role_policy` (that group
    only) and `aws_bedrock_model_invocation_logging_configuration` (text delivery on, binary data off)."""

    def __init__(self, scope: Construct, id: str, *, props: BedrockInvocationLoggingProps) -> None:
        super().__init__(scope, id)
        group = CloudwatchLogGroup(self, "logs", name=f"/tierwise/{props.name}/bedrock-invocations",
                                   retention_in_days=props.retention_days, kms_key_id=props.log_key.key_arn)
        role = IamRole(self, "role", name=f"{props.name}-bedrock-logging", assume_role_policy=service_trust(
            "bedrock.amazonaws.com", {"StringEquals": {"aws:SourceAccount": props.account_id},
                                      "ArnLike": {"aws:SourceArn": f"arn:aws:bedrock:{props.region}:{props.account_id}:*"}}))
        IamRolePolicy(self, "policy", role=role.id, name="deliver-invocation-logs", policy=policy_document([
            Statement(["logs:CreateLogStream", "logs:PutLogEvents"], [f"{group.arn}:log-stream:*"], sid="DeliverToOwnGroup")]))
        BedrockModelInvocationLoggingConfiguration(self, "config", logging_config=struct_list([{
            "cloudwatch_config": [{"log_group_name": group.name, "role_arn": role.arn}],
            "text_data_delivery_enabled": True, "image_data_delivery_enabled": False,
            "embedding_data_delivery_enabled": False, "video_data_delivery_enabled": False,
        }]), depends_on=[role])
