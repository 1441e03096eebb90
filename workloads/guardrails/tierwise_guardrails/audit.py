"""Append-only, hash-chained audit trail (JSON Lines).

Each record carries ``seq``, ``prev`` (the previous record's ``mac``) and ``mac`` =
HMAC-SHA256(key, canonical JSON of the record without ``mac``). Verification recomputes every MAC
and link, so an edited record (MAC mismatch), a removed record (seq gap / broken link) or a
reordered pair (broken link) is detected; a sidecar ``<file>.head`` records the last seq and MAC
so truncating the tail is detected too. Without the key, a forger cannot recompute MACs.

Records never contain raw PII: the redacted text plus, per finding, a keyed hash of the value.

Crash safety: one ``write`` of a full line then ``fsync`` under an exclusive ``flock`` (several
processes may append). On open, a torn last line (a crash mid-write, never acknowledged) is cut.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GENESIS = "0" * 64


def _canonical(rec: dict[str, Any]) -> bytes:
    return json.dumps(rec, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _mac(key: bytes, rec: dict[str, Any]) -> str:
    body = {k: v for k, v in rec.items() if k != "mac"}
    return hmac.new(key, _canonical(body), hashlib.sha256).hexdigest()


@dataclass
class VerifyReport:
    ok: bool
    records: int
    head_seq: int | None
    head_mac: str | None
    problems: list[str] = field(default_factory=list)


class AuditLog:
    def __init__(self, path: str | Path, key: bytes) -> None:
        self.path = Path(path)
        self.head_path = self.path.with_name(self.path.name + ".head")
        self._key = key
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(exist_ok=True)
        self._repair_torn_tail()

    def _repair_torn_tail(self) -> None:
        with open(self.path, "rb+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                if size == 0:
                    return
                f.seek(max(0, size - 1))
                if f.read(1) == b"\n":
                    return
                # Find the last complete line and cut everything after it.
                f.seek(0)
                data = f.read()
                cut = data.rfind(b"\n") + 1
                f.truncate(cut)
                f.flush()
                os.fsync(f.fileno())
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    @staticmethod
    def _last_record(f) -> dict[str, Any] | None:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size == 0:
            return None
        block = 4096
        pos = size
        buf = b""
        while pos > 0:
            step = min(block, pos)
            pos -= step
            f.seek(pos)
            buf = f.read(step) + buf
            lines = buf.rstrip(b"\n").split(b"\n")
            if len(lines) > 1 or pos == 0:
                return json.loads(lines[-1])
        return None

    def append(self, event: dict[str, Any]) -> dict[str, Any]:
        """Append one record and return it (with seq, prev, mac). Durable when this returns."""
        with self._lock, open(self.path, "ab+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                last = self._last_record(f)
                rec = dict(event)
                rec["seq"] = 0 if last is None else last["seq"] + 1
                rec["prev"] = GENESIS if last is None else last["mac"]
                rec["mac"] = _mac(self._key, rec)
                f.seek(0, os.SEEK_END)
                f.write(_canonical(rec) + b"\n")
                f.flush()
                os.fsync(f.fileno())
                tmp = self.head_path.with_suffix(".tmp")
                tmp.write_text(json.dumps({"seq": rec["seq"], "mac": rec["mac"]}))
                os.replace(tmp, self.head_path)
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
        return rec

    def verify(self) -> VerifyReport:
        return verify_file(self.path, self._key)


def verify_file(path: str | Path, key: bytes) -> VerifyReport:
    path = Path(path)
    problems: list[str] = []
    prev = GENESIS
    expected_seq = 0
    count = 0
    last_mac: str | None = None
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.endswith(b"\n"):
                problems.append(f"line {lineno}: torn (incomplete) last record")
                break
            try:
                rec = json.loads(raw)
            except json.JSONDecodeError:
                problems.append(f"line {lineno}: not valid JSON")
                prev, expected_seq = None, expected_seq + 1
                continue
            count += 1
            if not hmac.compare_digest(str(rec.get("mac", "")), _mac(key, rec)):
                problems.append(f"line {lineno} (seq {rec.get('seq')}): MAC mismatch — record edited or wrong key")
            if rec.get("seq") != expected_seq:
                problems.append(f"line {lineno}: seq {rec.get('seq')} where {expected_seq} was expected — record removed or reordered")
            if prev is not None and rec.get("prev") != prev:
                problems.append(f"line {lineno} (seq {rec.get('seq')}): prev link broken — record removed, inserted or reordered")
            prev = rec.get("mac")
            last_mac = rec.get("mac")
            expected_seq = (rec.get("seq") if isinstance(rec.get("seq"), int) else expected_seq) + 1
    head_seq = expected_seq - 1 if count else None
    head_file = path.with_name(path.name + ".head")
    if head_file.exists():
        head = json.loads(head_file.read_text())
        if head_seq is None or head["seq"] > head_seq:
            problems.append(f"head file says seq {head['seq']} but the log ends at {head_seq} — records removed from the end")
        elif head["seq"] == head_seq and head["mac"] != last_mac:
            problems.append("head file MAC differs from the last record — last record replaced")
    return VerifyReport(ok=not problems, records=count, head_seq=head_seq, head_mac=last_mac, problems=problems)
