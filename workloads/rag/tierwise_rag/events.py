"""Fluid-collection event sources: S3 event notifications (through SQS) and a watched folder.

S3 → SQS message bodies are S3 event-notification JSON (``{"Records": [...]}``), possibly wrapped
in an SNS envelope (``{"Type": "Notification", "Message": "<json>"}``), or the one-off
``s3:TestEvent`` sent when notifications are configured. Object keys arrive URL-encoded with ``+``
for spaces. ``sequencer`` orders events for one key; it is stored per document so a late, older
event cannot overwrite a newer one (see :func:`tierwise_rag.engine.sequencer_newer`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote_plus

from .documents import RawDocument, content_type_for_path
from .engine import DocResult, KnowledgeBase
from .settings import S3Source

log = logging.getLogger("tierwise.rag.events")


class EventFormatError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ObjectEvent:
    action: Literal["upsert", "delete"]
    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    sequencer: str | None
    size: int | None
    event_time: str | None
    event_name: str


def parse_s3_notification(body: str | bytes | dict[str, Any]) -> list[ObjectEvent]:
    """Parse one SQS message body into object events (empty for ``s3:TestEvent``)."""
    try:
        doc = json.loads(body) if isinstance(body, (str, bytes)) else body
    except json.JSONDecodeError as exc:
        raise EventFormatError(f"message body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise EventFormatError("message body is not a JSON object")
    if doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):  # SNS fan-out
        return parse_s3_notification(doc["Message"])
    if doc.get("Event") == "s3:TestEvent":
        return []
    records = doc.get("Records")
    if not isinstance(records, list):
        raise EventFormatError("not an S3 event notification: no 'Records' list")
    events: list[ObjectEvent] = []
    for i, rec in enumerate(records):
        try:
            if rec.get("eventSource") != "aws:s3":
                raise EventFormatError(f"Records[{i}] is not from aws:s3")
            name = rec["eventName"]
            s3 = rec["s3"]
            obj = s3["object"]
            if name.startswith("ObjectCreated:"):
                action: Literal["upsert", "delete"] = "upsert"
            elif name.startswith("ObjectRemoved:") or name.startswith("LifecycleExpiration:"):
                action = "delete"
            else:
                continue  # restore, replication, tagging...: nothing changes the content
            size = obj.get("size")
            events.append(
                ObjectEvent(
                    action=action, bucket=s3["bucket"]["name"], key=unquote_plus(obj["key"]), version_id=obj.get("versionId") or None,
                    etag=obj.get("eTag") or None, sequencer=obj.get("sequencer"), size=int(size) if size is not None else None,
                    event_time=rec.get("eventTime"), event_name=name,
                )
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise EventFormatError(f"Records[{i}] lacks a required field: {exc}") from None
    return events


def route(event: ObjectEvent, sources: list[S3Source]) -> S3Source | None:
    """The configured source with the longest matching prefix."""
    matches = [s for s in sources if s.bucket == event.bucket and event.key.startswith(s.prefix)]
    return max(matches, key=lambda s: len(s.prefix), default=None)


class S3EventApplier:
    """Applies object events to fluid collections; ``fetch(bucket, key, version_id) -> bytes``."""

    def __init__(self, kb: KnowledgeBase, sources: list[S3Source], fetch: Callable[[str, str, str | None], bytes]) -> None:
        self.kb, self.sources, self.fetch = kb, sources, fetch

    def apply(self, events: list[ObjectEvent]) -> list[DocResult]:
        results: list[DocResult] = []
        for ev in events:
            src = route(ev, self.sources)
            if src is None:
                log.warning("s3_event_unmapped_object", extra={"bucket": ev.bucket, "s3_event": ev.event_name})
                continue
            doc_id = f"s3://{ev.bucket}/{ev.key}"
            if ev.action == "delete":
                results.extend(self.kb.delete_documents(src.team, src.collection, [doc_id], sequencers=[ev.sequencer]))
                continue
            ctype = content_type_for_path(ev.key) or "text/plain"
            body = self.fetch(ev.bucket, ev.key, ev.version_id)
            raw = RawDocument(doc_id, body, ctype, source_version=ev.version_id or ev.etag,
                              metadata={"source": "s3", "bucket": ev.bucket, "key": ev.key})
            results.extend(self.kb.ingest(src.team, src.collection, [raw], sequencers=[ev.sequencer]).results)
        return results


class SqsConsumer:
    """Long-polls an SQS queue; deletes a message only after all its events were applied, so a
    crash re-delivers it (ingestion is idempotent by content hash and ordered by sequencer)."""

    def __init__(self, sqs: Any, s3: Any, queue_url: str, applier_factory: Callable[[Callable[[str, str, str | None], bytes]], S3EventApplier],
                 *, wait_seconds: int = 20, max_messages: int = 10) -> None:
        self.sqs, self.s3, self.queue_url = sqs, s3, queue_url
        self.applier = applier_factory(self._fetch)
        self.wait_seconds, self.max_messages = wait_seconds, max_messages

    def _fetch(self, bucket: str, key: str, version_id: str | None) -> bytes:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        return self.s3.get_object(**kwargs)["Body"].read()

    def poll_once(self) -> dict[str, int]:
        resp = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=self.max_messages,
                                        WaitTimeSeconds=self.wait_seconds, MessageSystemAttributeNames=["ApproximateReceiveCount"])
        stats = {"messages": 0, "applied": 0, "failed": 0, "malformed": 0}
        for msg in resp.get("Messages", []):
            stats["messages"] += 1
            try:
                events = parse_s3_notification(msg["Body"])
            except EventFormatError as exc:
                # A body that will never parse: drop it (log), else it poisons the queue until the DLQ.
                log.error("sqs_message_malformed_dropped", extra={"error": str(exc)})
                stats["malformed"] += 1
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=msg["ReceiptHandle"])
                continue
            try:
                self.applier.apply(events)
            except Exception:  # leave the message: SQS redelivers after the visibility timeout
                log.exception("s3_events_apply_failed_message_kept")
                stats["failed"] += 1
                continue
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=msg["ReceiptHandle"])
            stats["applied"] += 1
        return stats


class FolderSync:
    """Mirrors a local folder into a fluid collection: doc id = path relative to the folder,
    source_version = ``<mtime_ns>-<size>``. :meth:`sync` reconciles everything (start-up, and
    after a missed event); :meth:`watch` applies changes as watchfiles reports them."""

    def __init__(self, kb: KnowledgeBase, root: Path, collection: str, team: str) -> None:
        self.kb, self.root, self.collection, self.team = kb, root.resolve(), collection, team

    def _doc_id(self, path: Path) -> str:
        return path.resolve().relative_to(self.root).as_posix()

    def _raw(self, path: Path) -> RawDocument | None:
        ctype = content_type_for_path(path.name)
        if ctype is None:
            return None
        st = path.stat()
        return RawDocument(self._doc_id(path), path.read_bytes(), ctype, source_version=f"{st.st_mtime_ns}-{st.st_size}",
                           metadata={"source": "folder", "path": self._doc_id(path)})

    def sync(self) -> list[DocResult]:
        raws = [r for p in sorted(self.root.rglob("*")) if p.is_file() for r in [self._raw(p)] if r is not None]
        results = self.kb.ingest(self.team, self.collection, raws).results if raws else []
        present = {r.id for r in raws}
        gone = [d for d, v in self.kb.documents(self.team, self.collection).items()
                if d not in present and (v.get("metadata") or {}).get("source") == "folder"]
        if gone:
            results += self.kb.delete_documents(self.team, self.collection, gone)
        return results

    def apply_changes(self, changes: set[tuple[Any, str]]) -> list[DocResult]:
        from watchfiles import Change

        upserts: dict[str, RawDocument] = {}
        deletes: list[str] = []
        for change, path_str in sorted(changes, key=lambda c: c[1]):
            path = Path(path_str)
            if change == Change.deleted or not path.exists():
                if content_type_for_path(path.name):
                    deletes.append(path.resolve().relative_to(self.root).as_posix() if path.is_absolute() else path_str)
            elif path.is_file():
                raw = self._raw(path)
                if raw is not None:
                    upserts[raw.id] = raw
        results: list[DocResult] = []
        if upserts:
            results += self.kb.ingest(self.team, self.collection, list(upserts.values())).results
        if deletes:
            results += self.kb.delete_documents(self.team, self.collection, deletes)
        return results

    async def watch(self, stop: asyncio.Event, on_applied: Callable[[list[DocResult]], None] | None = None) -> None:
        from watchfiles import awatch

        await asyncio.to_thread(self.sync)
        async for changes in awatch(self.root, stop_event=stop, recursive=True):
            results = await asyncio.to_thread(self.apply_changes, changes)
            if on_applied:
                on_applied(results)
