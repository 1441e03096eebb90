"""The usage ledger's format, owned by the router: lines, segment names, S3 keys, and the one reader.

Line: ``<crc32 hex8> <compact JSON>\\n``. A line whose checksum does not match (the torn tail of a
crash) is counted and skipped, never misparsed.

Segment: the router appends lines to one *active* local file and seals it (atomic rename into
``sealed/``) when it reaches a size or age limit, or when the durable-ack shipper takes it. A sealed
segment never changes again; its name is decided once, at sealing, and is its S3 key's last part:
``<prefix>/dt=<UTC date of its first entry>/<yyyymmddThhmmss.ffffffZ>-<replica>-<rand16>.jsonl``.
The random part makes the key unique to that one file, so an upload can be made idempotent with
``If-None-Match: *``: a retry after a lost response gets 412, which can only mean the same bytes
are already stored.

Exactly-once accounting = at-least-once delivery (the router deletes a local segment only after S3
confirmed it) + idempotent keys (a retried upload never creates a second object) + dedupe on read by
``entry_id`` (a router-made id, unique per entry: ``request_id`` is not used as the key, because a
client may send the same ``x-request-id`` on a retry that the upstream served, and billed, twice).
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

FORMAT = "tierwise-ledger/v1"
SUFFIX = ".jsonl"
MAX_SEGMENT_SPAN = dt.timedelta(days=1)  # a segment's entries lie within a day of its first entry
CLOCK_SLACK = dt.timedelta(minutes=5)  # concurrent writers: an entry may be a little older than the first
_SEG = re.compile(r"^(\d{8}T\d{6}\.\d{6}Z)-([A-Za-z0-9._-]{1,63})-([0-9a-f]{16})$")
_KEY_SAFE = re.compile(r"[^A-Za-z0-9._-]")


class LedgerFormatError(ValueError):
    """A name or key that is not a ledger segment, with the value seen."""


def encode_line(entry: dict[str, Any]) -> bytes:
    body = orjson.dumps(entry)
    return b"%08x " % zlib.crc32(body) + body + b"\n"


def parse_lines(data: bytes) -> tuple[list[dict[str, Any]], int]:
    """All intact entries in ``data``, and the number of corrupt/torn lines skipped."""
    entries, bad = [], 0
    for line in data.split(b"\n"):
        if not line:
            continue
        crc, _, body = line.partition(b" ")
        try:
            if len(crc) == 8 and int(crc, 16) == zlib.crc32(body):
                entries.append(orjson.loads(body))
                continue
        except ValueError:
            pass
        bad += 1
    return entries, bad


def read_file(path: str | Path) -> tuple[list[dict[str, Any]], int]:
    """One ledger file (active or sealed segment); a missing file is empty."""
    p = Path(path)
    return parse_lines(p.read_bytes()) if p.exists() else ([], 0)


def replica_slug(replica: str) -> str:
    """A replica id made safe for file names and S3 keys (pod names already are)."""
    s = _KEY_SAFE.sub("-", replica)[:63].strip("-.")
    if not s:
        raise LedgerFormatError(f"replica id {replica!r} has no usable characters; use [A-Za-z0-9._-]")
    return s


def segment_name(first_ts: dt.datetime, replica: str, rand64: int) -> str:
    t = first_ts.astimezone(dt.UTC)
    return f"{t.strftime('%Y%m%dT%H%M%S.%fZ')}-{replica_slug(replica)}-{rand64:016x}"


def parse_segment_name(name: str) -> tuple[dt.datetime, str]:
    """(first entry time, replica) of a segment name (with or without the .jsonl suffix)."""
    m = _SEG.match(name.removesuffix(SUFFIX))
    if m is None:
        raise LedgerFormatError(f"{name!r} is not a ledger segment name (<yyyymmddThhmmss.ffffffZ>-<replica>-<hex16>)")
    t = dt.datetime.strptime(m.group(1), "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=dt.UTC)
    return t, m.group(2)


def _prefix(prefix: str) -> str:
    return prefix.strip("/") + "/" if prefix.strip("/") else ""


def segment_key(prefix: str, name: str) -> str:
    t, _ = parse_segment_name(name)
    return f"{_prefix(prefix)}dt={t.date().isoformat()}/{name.removesuffix(SUFFIX)}{SUFFIX}"


def entry_key(entry: dict[str, Any], body: bytes | None = None) -> str:
    """The dedupe key: the router's entry_id; entries written before entry_id existed fall back to
    their exact JSON (two identical lines are the same event)."""
    eid = entry.get("entry_id")
    return str(eid) if eid else (body or orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)).decode()


@dataclass
class LedgerRead:
    """What a read found: deduplicated entries plus the counts an auditor needs."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    corrupt_lines: int = 0
    duplicates: int = 0  # entries seen again (same entry_id) and not counted twice
    segments: int = 0
    sources: list[str] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set, repr=False)

    def add(self, entries: Iterable[dict[str, Any]], bad: int, source: str) -> None:
        """One segment's (or file's) parse result."""
        self.corrupt_lines += bad
        self.segments += 1
        self.sources.append(source)
        self._take(entries)

    def merge(self, other: LedgerRead) -> None:
        """Another read (another store or directory), deduplicated against this one: a segment still on
        a router's disk may already be in S3."""
        self.corrupt_lines += other.corrupt_lines
        self.duplicates += other.duplicates
        self.segments += other.segments
        self.sources += other.sources
        self._take(other.entries)

    def _take(self, entries: Iterable[dict[str, Any]]) -> None:
        for e in entries:
            k = entry_key(e)
            if k in self._seen:
                self.duplicates += 1
                continue
            self._seen.add(k)
            self.entries.append(e)


def read_local(paths: Iterable[str | Path]) -> LedgerRead:
    """Files, or ledger directories (every ``*.jsonl`` below them: the active file and ``sealed/``)."""
    out = LedgerRead()
    for p in map(Path, paths):
        files = sorted(p.rglob(f"*{SUFFIX}")) if p.is_dir() else [p]
        for f in files:
            try:
                data = f.read_bytes()
            except OSError as e:
                raise LedgerFormatError(f"{f}: {e.strerror}") from None
            out.add(*parse_lines(data), str(f))
    return out


class S3Client(Protocol):  # the part of a boto3 S3 client the reader uses
    def get_paginator(self, operation_name: str) -> Any: ...
    def get_object(self, **kw: Any) -> Any: ...


def list_segments(s3: S3Client, bucket: str, prefix: str, since: dt.datetime, until: dt.datetime) -> list[str]:
    """Keys of the segments that can hold entries in [since, until). ``dt=YYYY-MM-DD`` partitions
    sort by date, so this is one listing from the first day that can matter to the last, whatever the
    window's length."""
    first_day = (since - MAX_SEGMENT_SPAN).astimezone(dt.UTC).date().isoformat()
    last_day = until.astimezone(dt.UTC).date().isoformat()
    base = f"{_prefix(prefix)}dt="
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base, StartAfter=base + first_day):
        for o in page.get("Contents", []):
            day, _, name = o["Key"][len(base):].partition("/")
            if day > last_day:
                return sorted(keys)
            try:
                first, _ = parse_segment_name(name)
            except LedgerFormatError:
                continue  # not ours (a stray upload): never parsed as ledger data
            if first < until + CLOCK_SLACK:
                keys.append(o["Key"])
    return sorted(keys)


def read_s3(s3: S3Client, bucket: str, prefix: str, since: dt.datetime, until: dt.datetime) -> LedgerRead:
    """Every entry stored in S3 whose segment can overlap [since, until), deduplicated (filter
    entries by their own ts afterwards: a segment spans up to a day)."""
    out = LedgerRead()
    for key in list_segments(s3, bucket, prefix, since, until):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        out.add(*parse_lines(body), f"s3://{bucket}/{key}")
    return out
