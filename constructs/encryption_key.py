"""`EncryptionKey`: a customer-managed KMS key with rotation, an alias and a least-privilege key policy."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from constructs import Construct
from cdktn_provider_aws.kms_alias import KmsAlias
from cdktn_provider_aws.kms_key import KmsKey


@dataclass(frozen=True)
class EncryptionKeyProps:
    alias: str
    account_id: str
    region: str
    description: str
    #: Service principals (e.g. `logs.us-west-2.amazonaws.com`) allowed to use the key. None when omitted.
    service_principals: list[str] = field(default_factory=list)
    deletion_window_days: int = 30
    protect: bool = True


class EncryptionKey(Construct):
    """Creates `aws_kms_key` (rotation on) and `aws_kms_alias`."""

    def __init__(self, scope: Construct, id: str, *, props: EncryptionKeyProps) -> None:
        super().__init__(scope, id)
        statements = [
            {
                "Sid": "AccountAdministration",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{props.account_id}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ]
        if props.service_principals:
            statements.append(
                {
                    "Sid": "ServiceUse",
                    "Effect": "Allow",
                    "Principal": {"Service": sorted(props.service_principals)},
                    "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": props.account_id}},
                }
            )
        self.key = KmsKey(
            self,
            "key",
            description=props.description,
            enable_key_rotation=True,
            deletion_window_in_days=props.deletion_window_days,
            policy=json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True),
            lifecycle={"prevent_destroy": props.protect},
        )
        KmsAlias(self, "alias", name=f"alias/{props.alias}", target_key_id=self.key.key_id)

    @property
    def key_arn(self) -> str:
        return self.key.arn
