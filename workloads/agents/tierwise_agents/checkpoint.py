"""Task checkpoints in DynamoDB: one item per task, written after every step with optimistic locking.

Item: `task_id`, `version` (incremented on every write), `state` (JSON: completed steps and their
outputs, pending approval ticket, status), `expires_at` (TTL). A write whose `version` moved since it
was read fails: two workers can never interleave steps of one task.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from botocore.exceptions import ClientError


class CheckpointConflict(Exception):
    """Another worker wrote this task's checkpoint since we read it."""


@dataclass
class TaskState:
    task_id: str
    version: int = 0
    status: str = "running"  # running | done
    steps: dict[str, Any] = field(default_factory=dict)  # step name -> output, in completion order
    pending: dict[str, Any] = field(default_factory=dict)  # e.g. approval tickets requested but not decided

    def to_json(self) -> str:
        # insertion order kept on purpose: `steps` lists the completed steps in the order they ran
        return json.dumps({"status": self.status, "steps": self.steps, "pending": self.pending})


class DynamoCheckpointStore:
    def __init__(self, client, table: str, ttl_days: int = 14, clock: Callable[[], float] = time.time) -> None:
        self._ddb = client
        self._table = table
        self._ttl_s = ttl_days * 86400
        self._clock = clock

    def load(self, task_id: str) -> TaskState:
        item = self._ddb.get_item(TableName=self._table, Key={"task_id": {"S": task_id}}, ConsistentRead=True).get("Item")
        if not item:
            return TaskState(task_id)
        data = json.loads(item["state"]["S"])
        return TaskState(task_id, int(item["version"]["N"]), data["status"], data["steps"], data.get("pending", {}))

    def save(self, st: TaskState) -> None:
        new = st.version + 1
        item = {"task_id": {"S": st.task_id}, "version": {"N": str(new)}, "state": {"S": st.to_json()},
                "expires_at": {"N": str(int(self._clock()) + self._ttl_s)}}
        try:
            if st.version == 0:
                self._ddb.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(task_id)")
            else:
                self._ddb.put_item(TableName=self._table, Item=item, ConditionExpression="version = :v",
                                   ExpressionAttributeValues={":v": {"N": str(st.version)}})
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise CheckpointConflict(f"task {st.task_id}: checkpoint moved past version {st.version}") from e
            raise
        st.version = new
