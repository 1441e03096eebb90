"""`CheckpointTable`: one agent's DynamoDB table of task checkpoints (one item per task)."""

from __future__ import annotations

from dataclasses import dataclass, field

from constructs import Construct
from cdktn_provider_aws.dynamodb_table import DynamodbTable

from ..iam import Statement
from ..jsii_structs import struct_list
from ..serving.data_bucket import IKmsKey

#: Partition key of every item; the reference agent stores one item per task id.
HASH_KEY = "task_id"
TTL_ATTRIBUTE = "expires_at"


@dataclass(frozen=True)
class CheckpointTableProps:
    name: str
    #: Keep the table (and refuse to delete it) on `terraform destroy`.
    protect: bool = True
    tags: dict[str, str] = field(default_factory=dict)


class CheckpointTable(Construct):
    """Creates one `aws_dynamodb_table` (on-demand, `task_id` hash key, SSE with the stack's KMS key,
    point-in-time recovery, TTL on `expires_at`, deletion protection when `protect`)."""

    def __init__(self, scope: Construct, id: str, *, key: IKmsKey, props: CheckpointTableProps) -> None:
        super().__init__(scope, id)
        p = props
        self._key = key
        self.table = DynamodbTable(
            self, "table", name=p.name, billing_mode="PAY_PER_REQUEST", hash_key=HASH_KEY,
            attribute=struct_list([{"name": HASH_KEY, "type": "S"}]),
            server_side_encryption={"enabled": True, "kms_key_arn": key.key_arn},
            point_in_time_recovery={"enabled": True}, ttl={"attribute_name": TTL_ATTRIBUTE, "enabled": True},
            deletion_protection_enabled=p.protect, lifecycle={"prevent_destroy": p.protect}, tags=p.tags)

    def grant_read_write(self) -> list[Statement]:
        """Item-level read/write on this table only (no scans, no table administration)."""
        return [
            Statement(["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                      [self.table.arn], sid="Checkpoints"),
            Statement(["kms:Decrypt", "kms:GenerateDataKey"], [self._key.key_arn], sid="EncryptCheckpoints"),
        ]

    @property
    def table_name(self) -> str:
        return self.table.name

    @property
    def table_arn(self) -> str:
        return self.table.arn
