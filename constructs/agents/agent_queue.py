"""`AgentQueue`: one agent's SQS work queue and its dead-letter queue."""

from __future__ import annotations

from ..work_queue import WorkQueue, WorkQueueProps

AgentQueueProps = WorkQueueProps


class AgentQueue(WorkQueue):
    """A `WorkQueue` (queue + DLQ + TLS-only policies) an agent consumes; KEDA scales on its depth."""

    kind = "AgentQueue"
