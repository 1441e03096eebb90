"""`WorkQueue`: an encrypted SQS queue with its dead-letter queue — the one shape every queue here takes
(the guardrails escalation queue, each agent's work queue)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from constructs import Construct
from cdktn_provider_aws.sqs_queue import SqsQueue
from cdktn_provider_aws.sqs_queue_policy import SqsQueuePolicy

from .iam import Statement
from .serving.data_bucket import IKmsKey


@dataclass(frozen=True)
class WorkQueueProps:
    name: str
    retention_days: int = 4
    #: Receives before a message moves to the dead-letter queue.
    max_receives: int = 5
    visibility_timeout_s: int = 300
    #: Long polling: consumers wait up to this long for a message instead of spinning.
    receive_wait_s: int = 20
    tags: dict[str, str] = field(default_factory=dict)


class WorkQueue(Construct):
    """Creates the work `aws_sqs_queue` (KMS, long polling, redrive to the DLQ after `max_receives`), the
    dead-letter `aws_sqs_queue` (14-day retention, redrive allowed only from this queue) and one
    `aws_sqs_queue_policy` per queue denying non-TLS access."""

    kind = "WorkQueue"

    def __init__(self, scope: Construct, id: str, *, key: IKmsKey, props: WorkQueueProps) -> None:
        super().__init__(scope, id)
        p = props
        if not 1 <= p.retention_days <= 14:
            raise ValueError(f"{self.kind} {p.name}: retention_days must be 1..14, got {p.retention_days}")
        if not 1 <= p.max_receives <= 1000:
            raise ValueError(f"{self.kind} {p.name}: max_receives must be 1..1000, got {p.max_receives}")
        if not 0 <= p.receive_wait_s <= 20:
            raise ValueError(f"{self.kind} {p.name}: receive_wait_s must be 0..20, got {p.receive_wait_s}")
        self._key = key
        tags = p.tags or None
        self.dlq = SqsQueue(self, "dlq", name=f"{p.name}-dlq", message_retention_seconds=14 * 86400,
                            kms_master_key_id=key.key_arn, kms_data_key_reuse_period_seconds=300, tags=tags)
        self.queue = SqsQueue(self, "queue", name=p.name, message_retention_seconds=p.retention_days * 86400,
                              visibility_timeout_seconds=p.visibility_timeout_s, receive_wait_time_seconds=p.receive_wait_s,
                              kms_master_key_id=key.key_arn, kms_data_key_reuse_period_seconds=300, tags=tags,
                              redrive_policy=json.dumps({"deadLetterTargetArn": self.dlq.arn, "maxReceiveCount": p.max_receives},
                                                        sort_keys=True))
        self.dlq.redrive_allow_policy = json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [self.queue.arn]},
                                                   sort_keys=True)
        for qid, q in (("queue-policy", self.queue), ("dlq-policy", self.dlq)):
            SqsQueuePolicy(self, qid, queue_url=q.url, policy=json.dumps({"Version": "2012-10-17", "Statement": [{
                "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": q.arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}, sort_keys=True))

    def grant_send(self, sid: str = "SendToQueue") -> list[Statement]:
        """Send to the work queue (never its DLQ) and encrypt with its key."""
        return [
            Statement(["sqs:SendMessage"], [self.queue.arn], sid=sid),
            Statement(["kms:Decrypt", "kms:GenerateDataKey"], [self._key.key_arn], sid=f"{sid}Encrypt"),
        ]

    def grant_consume(self) -> list[Statement]:
        """Receive, delete and extend visibility on this queue only, and decrypt its messages."""
        return [
            Statement(["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
                      [self.queue.arn], sid="ConsumeWorkQueue"),
            Statement(["kms:Decrypt"], [self._key.key_arn], sid="DecryptWorkQueue"),
        ]

    def grant_depth(self) -> list[Statement]:
        """Read the queue's attributes (depth) only: what an autoscaler needs."""
        return [Statement(["sqs:GetQueueAttributes"], [self.queue.arn])]

    @property
    def queue_url(self) -> str:
        return self.queue.url

    @property
    def queue_arn(self) -> str:
        return self.queue.arn
