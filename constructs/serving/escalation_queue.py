"""`EscalationQueue`: the SQS queue guardrails send flagged requests to, with its dead-letter queue."""

from __future__ import annotations

from ..iam import Statement
from ..work_queue import WorkQueue, WorkQueueProps

EscalationQueueProps = WorkQueueProps


class EscalationQueue(WorkQueue):
    """A `WorkQueue` (queue + DLQ + TLS-only policies) that the guardrails service sends escalations to."""

    kind = "EscalationQueue"

    def grant_send(self, sid: str = "SendEscalations") -> list[Statement]:
        return super().grant_send(sid)
