"""Human-review queue for ``escalate`` decisions.

Two backends behind one interface:

* :class:`LocalReviewQueue` (default): a SQLite file in WAL mode — durable across crashes and
  shared by the service and the ``tierwise guard review`` CLI on the same host/volume.
* :class:`SqsReviewQueue` (AWS): tickets travel through an SQS queue (boto3) to reviewers; the
  ledger that answers "what is the outcome of ticket X" is still a SQLite file here. For several
  replicas put that ledger on shared storage, or swap it for DynamoDB (see README, not built).

Tickets hold the *redacted* text only.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

Status = Literal["pending", "approved", "denied"]


@dataclass(frozen=True)
class Ticket:
    id: str
    created_at: float
    team: str
    direction: str
    reason: str
    redacted_text: str
    findings: list[dict[str, Any]]
    status: Status = "pending"
    reviewer: str | None = None
    note: str | None = None
    decided_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class TicketNotFound(KeyError):
    pass


class TicketAlreadyDecided(RuntimeError):
    pass


class ReviewQueue(Protocol):
    def submit(self, *, team: str, direction: str, reason: str, redacted_text: str, findings: list[dict[str, Any]]) -> Ticket: ...
    def get(self, ticket_id: str) -> Ticket: ...
    def list(self, status: Status | None = "pending", limit: int = 50) -> list[Ticket]: ...
    def decide(self, ticket_id: str, *, approve: bool, reviewer: str, note: str | None = None) -> Ticket: ...
    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS tickets (
  id TEXT PRIMARY KEY, created_at REAL NOT NULL, team TEXT NOT NULL, direction TEXT NOT NULL,
  reason TEXT NOT NULL, redacted_text TEXT NOT NULL, findings TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending', reviewer TEXT, note TEXT, decided_at REAL
);
CREATE INDEX IF NOT EXISTS tickets_status ON tickets(status, created_at);
"""


class LocalReviewQueue:
    def __init__(self, path: str | Path, *, clock=time.time) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    @staticmethod
    def _row(r: tuple) -> Ticket:
        return Ticket(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7], r[8], r[9], r[10])

    def submit(self, *, team: str, direction: str, reason: str, redacted_text: str, findings: list[dict[str, Any]]) -> Ticket:
        t = Ticket(uuid.uuid4().hex, self._clock(), team, direction, reason, redacted_text, findings)
        with self._lock:
            self._db.execute(
                "INSERT INTO tickets (id, created_at, team, direction, reason, redacted_text, findings) VALUES (?,?,?,?,?,?,?)",
                (t.id, t.created_at, t.team, t.direction, t.reason, t.redacted_text, json.dumps(t.findings)),
            )
        return t

    def get(self, ticket_id: str) -> Ticket:
        with self._lock:
            r = self._db.execute("SELECT * FROM tickets WHERE id = ?", (ticket_id,)).fetchone()
        if r is None:
            raise TicketNotFound(ticket_id)
        return self._row(r)

    def list(self, status: Status | None = "pending", limit: int = 50) -> list[Ticket]:
        with self._lock:
            if status is None:
                rows = self._db.execute("SELECT * FROM tickets ORDER BY created_at LIMIT ?", (limit,)).fetchall()
            else:
                rows = self._db.execute("SELECT * FROM tickets WHERE status = ? ORDER BY created_at LIMIT ?", (status, limit)).fetchall()
        return [self._row(r) for r in rows]

    def decide(self, ticket_id: str, *, approve: bool, reviewer: str, note: str | None = None) -> Ticket:
        status = "approved" if approve else "denied"
        with self._lock:
            cur = self._db.execute(
                "UPDATE tickets SET status = ?, reviewer = ?, note = ?, decided_at = ? WHERE id = ? AND status = 'pending'",
                (status, reviewer, note, self._clock(), ticket_id),
            )
            changed = cur.rowcount
        if not changed:
            current = self.get(ticket_id)  # raises TicketNotFound
            raise TicketAlreadyDecided(f"ticket {ticket_id} is already {current.status}")
        return self.get(ticket_id)

    def close(self) -> None:
        self._db.close()


class SqsReviewQueue:
    """Tickets are sent to SQS (for reviewers' tooling) and recorded in the ledger."""

    def __init__(self, queue_url: str, ledger: LocalReviewQueue, *, client=None, region: str | None = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("sqs", region_name=region)
        self._sqs = client
        self.queue_url = queue_url
        self._ledger = ledger

    def submit(self, *, team: str, direction: str, reason: str, redacted_text: str, findings: list[dict[str, Any]]) -> Ticket:
        t = self._ledger.submit(team=team, direction=direction, reason=reason, redacted_text=redacted_text, findings=findings)
        self._sqs.send_message(
            QueueUrl=self.queue_url,
            MessageBody=json.dumps(t.as_dict(), sort_keys=True),
            MessageAttributes={
                "ticket_id": {"DataType": "String", "StringValue": t.id},
                "team": {"DataType": "String", "StringValue": team or "-"},
            },
        )
        return t

    def get(self, ticket_id: str) -> Ticket:
        return self._ledger.get(ticket_id)

    def list(self, status: Status | None = "pending", limit: int = 50) -> list[Ticket]:
        return self._ledger.list(status, limit)

    def decide(self, ticket_id: str, *, approve: bool, reviewer: str, note: str | None = None) -> Ticket:
        t = self._ledger.decide(ticket_id, approve=approve, reviewer=reviewer, note=note)
        # Remove the ticket's message from the queue (receive a batch, delete the matching one).
        resp = self._sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["ticket_id"], VisibilityTimeout=30)
        for msg in resp.get("Messages", []):
            attr = msg.get("MessageAttributes", {}).get("ticket_id", {}).get("StringValue")
            if attr == ticket_id:
                self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=msg["ReceiptHandle"])
        return t

    def close(self) -> None:
        self._ledger.close()


def build_queue(settings) -> ReviewQueue:
    ledger = LocalReviewQueue(settings.resolved_queue_path)
    if settings.queue_backend == "sqs":
        return SqsReviewQueue(settings.sqs_queue_url, ledger, region=settings.aws_region)
    return ledger
