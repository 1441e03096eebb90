"""`EscalationQueue`: the SQS queue guardrails send flagged requests to, with its dead-letter queue."""

from __future__ import annotations

import json
from dataclasses import dataclass

from constructs import Construct
from cdktn_provider_aws.sqs_queue import SqsQueue
from cdktn_provider_aws.sqs_queue_policy import SqsQueuePolicy

from ..iam import Statement
from .data_bucket import IKmsKey


@dataclass(frozen=True)
class EscalationQueueProps:
    name: str
    retention_days: int = 4
    #: Receives before a message moves to the dead-letter queue.
    max_receives: int = 5
    visibility_timeout_s: int = 300


class EscalationQueue(Construct):
    """Creates the `aws_sqs_queue` (KMS-encrypted, redrive to the DLQ), the dead-letter `aws_sqs_queue`
    (14-day retention, redrive allowed only from this queue) and an `aws_sqs_queue_policy` per queue denying non-TLS."""

    def __init__(self, scope: Construct, id: str, *, key: IKmsKey, props: EscalationQueueProps) -> None:
        super().__init__(scope, id)
        p = props
        if not 1 <= p.retention_days <= 14:
            raise ValueError(f"EscalationQueue {p.name}: retention_days must be 1..14, got {p.retention_days}")
        self._key = key
        self.dlq = SqsQueue(self, "dlq", name=f"{p.name}-dlq", message_retention_seconds=14 * 86400,
                            kms_master_key_id=key.key_arn, kms_data_key_reuse_period_seconds=300)
        self.queue = SqsQueue(self, "queue", name=p.name, message_retention_seconds=p.retention_days * 86400,
                              visibility_timeout_seconds=p.visibility_timeout_s, kms_master_key_id=key.key_arn,
                              kms_data_key_reuse_period_seconds=300,
                              redrive_policy=json.dumps({"deadLetterTargetArn": self.dlq.arn, "maxReceiveCount": p.max_receives},
                                                        sort_keys=True))
        self.dlq.redrive_allow_policy = json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [self.queue.arn]},
                                                   sort_keys=True)
        for qid, q in (("queue-policy", self.queue), ("dlq-policy", self.dlq)):
            SqsQueuePolicy(self, qid, queue_url=q.url, policy=json.dumps({"Version": "2012-10-17", "Statement": [{
                "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": q.arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}, sort_keys=True))

    def grant_send(self) -> list[Statement]:
        return [
            Statement(["sqs:SendMessage"], [self.queue.arn], sid="SendEscalations"),
            Statement(["kms:Decrypt", "kms:GenerateDataKey"], [self._key.key_arn], sid="EncryptEscalations"),
        ]

    @property
    def queue_url(self) -> str:
        return self.queue.url

    @property
    def queue_arn(self) -> str:
        return self.queue.arn
