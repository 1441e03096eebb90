"""Ships sealed ledger segments to S3, exactly once, and deletes them locally only after S3 confirmed.

Semantics (stated here, tested in tests/test_ledger_durable.py):

- **At least once.** A sealed segment is deleted locally only after PutObject returned success (or
  412, below). A crash anywhere before that leaves the file in ``sealed/``; the next start ships it.
- **No second copy.** The key is unique to the file (`tierwise_ledger.segment_name`: 64 random bits)
  and the upload is conditional (``If-None-Match: *``). A retry after a lost response gets 412
  PreconditionFailed, which can only mean this very file is already stored (a PUT is atomic and its
  SHA-256 is checked by S3), so it counts as confirmed and no second object or version is created.
  The reader still dedupes by ``entry_id`` (`tierwise_ledger.LedgerRead`) as a second line of defence.
- **Settled.** With ``ack=durable`` an entry is *settled* when its segment is confirmed by S3: the
  router answers the request only then (``x-tierwise-ledger: durable``; ``pending`` if the ack timed
  out — the entry is still on local disk and ships later). The shipper seals whatever the active file
  holds each time it is idle, so uploads group-commit: one PUT carries every entry written during the
  previous PUT, at most one PUT per ``min_interval_s``. With ``ack=local`` an entry is settled at its
  local fsync and ships within ``segment_max_age_s``; losing the volume then loses at most that much.
- **Retention.** Local: deleted on confirmation, bounded by the ledger's ``local_max_bytes``. S3: the
  bucket's versioning, object lock and lifecycle (stacks/serving.py) — the router's role may put
  objects under its prefix and nothing else (no delete, no overwrite).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from pathlib import Path
from typing import Any

from tierwise_ledger import SUFFIX, segment_key

from .ledger import Ledger
from .observability import Metrics, event


class S3Sink:
    """Conditional, checksummed PutObject of one sealed segment to ``s3://bucket/prefix/dt=.../``."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix

    def put(self, name: str, data: bytes) -> bool:
        """True if this call stored the object, False if it was already stored (412)."""
        from botocore.exceptions import ClientError

        try:
            self.client.put_object(
                Bucket=self.bucket, Key=segment_key(self.prefix, name), Body=data, IfNoneMatch="*", ChecksumAlgorithm="SHA256",
                ChecksumSHA256=base64.b64encode(hashlib.sha256(data).digest()).decode(),
                ContentType="application/x-ndjson")
        except ClientError as e:
            err = e.response.get("Error", {})
            if err.get("Code") == "PreconditionFailed" or e.response.get("ResponseMetadata", {}).get(
                    "HTTPStatusCode") == 412:
                return False
            raise
        return True


class Shipper:
    def __init__(self, ledger: Ledger, sink: S3Sink | None, *, min_interval_s: float = 0.0,
                 poll_s: float = 1.0, backoff_max_s: float = 30.0, log: logging.Logger | None = None,
                 metrics: Metrics | None = None) -> None:
        self.ledger, self.sink, self.metrics = ledger, sink, metrics
        if metrics is not None:
            metrics.ledger_backlog.set_function(lambda: ledger.backlog_bytes)
            metrics.ledger_full.set_function(lambda: 1 if ledger.full else 0)
        self.min_interval_s, self.poll_s, self.backoff_max_s = min_interval_s, poll_s, backoff_max_s
        self.log = log or logging.getLogger("tierwise.ledger")
        self.shipped = 0  # segments this process stored
        self.already_stored = 0  # uploads answered 412: an earlier attempt had stored them
        self.failures = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_put = 0.0

    def start(self) -> Shipper:
        self._thread = threading.Thread(target=self._run, name="ledger-shipper", daemon=True)
        self._thread.start()
        return self

    def ship_once(self) -> int:
        """Seal the active file if due, upload every sealed segment oldest first; stops at the first
        failure (raised). Returns how many segments were confirmed. With no store (dev/test) nothing is
        sealed by age: the active file simply grows (bounded by the ledger's local_max_bytes)."""
        if self.sink is None:
            return 0
        self.ledger.rotate_if_due()
        n = 0
        for seg in self.ledger.sealed_segments():
            self._upload(seg)
            n += 1
        return n

    def _upload(self, seg: Path) -> None:
        data = seg.read_bytes()
        self._last_put = time.monotonic()
        if self.sink.put(seg.name.removesuffix(SUFFIX), data):  # type: ignore[union-attr]
            self.shipped += 1
            result = "stored"
        else:
            self.already_stored += 1
            result = "already_stored"
            event(self.log, "ledger_segment_already_stored", segment=seg.name)
        if self.metrics is not None:
            self.metrics.ledger_shipped.labels(result).inc()
        self.ledger.shipped(seg)

    def _run(self) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            wait = self.poll_s
            if self.ledger.durable_ack:
                gap = self.min_interval_s - (time.monotonic() - self._last_put)
                if gap > 0:
                    self._stop.wait(gap)
            try:
                self.ship_once()
                backoff = 0.0
            except Exception as e:  # noqa: BLE001 — keep the segment, retry with backoff, say why
                self.failures += 1
                if self.metrics is not None:
                    self.metrics.ledger_ship_failures.inc()
                self.last_error = f"{e.__class__.__name__}: {str(e)[:200]}"
                backoff = min(self.backoff_max_s, max(0.1, backoff * 2))
                wait = backoff
                event(self.log, "ledger_ship_failed", logging.WARNING, error=self.last_error,
                      backlog_bytes=self.ledger.backlog_bytes, retry_in_s=backoff)
            if self._stop.is_set():
                break
            if self.ledger.wake.wait(wait):
                self.ledger.wake.clear()

    def stop(self, timeout_s: float = 10.0) -> int:
        """Shutdown: flush the writer, seal the active file, ship what S3 will take within
        ``timeout_s``. Returns the number of segments left on local disk."""
        self._stop.set()
        self.ledger.wake.set()
        if self._thread is not None:
            self._thread.join()
        self.ledger.flush()
        if self.sink is not None:  # with no store, the active file stays for the next start
            self.ledger.rotate()
        deadline = time.monotonic() + timeout_s
        while self.sink is not None and self.ledger.sealed_segments() and time.monotonic() < deadline:
            try:
                self.ship_once()
            except Exception as e:  # noqa: BLE001
                self.last_error = f"{e.__class__.__name__}: {str(e)[:200]}"
                time.sleep(0.2)
        left = len(self.ledger.sealed_segments())
        if left:
            event(self.log, "ledger_unshipped_at_shutdown", logging.WARNING, segments=left,
                  backlog_bytes=self.ledger.backlog_bytes, error=self.last_error)
        self.ledger.close()
        return left


def open_ledger(settings: Any, boto_session: Any = None, log: logging.Logger | None = None,
                metrics: Metrics | None = None) -> tuple[Ledger, Shipper]:
    """The ledger and its started shipper, as the settings describe them (the app's lifespan calls this)."""
    s = settings
    sink = None
    if s.ledger_s3_bucket:
        import boto3
        from botocore.config import Config

        sess = boto_session or boto3.session.Session()
        client = sess.client("s3", region_name=s.ledger_s3_region,
                             endpoint_url=str(s.ledger_s3_endpoint_url) if s.ledger_s3_endpoint_url else None,
                             config=Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 2}))
        sink = S3Sink(client, s.ledger_s3_bucket, s.ledger_s3_prefix)
    ledger = Ledger(s.ledger_path, s.ledger_fsync, s.ledger_batch_window_ms / 1000, replica=s.ledger_replica_id,
                    segment_max_bytes=s.ledger_segment_max_bytes, segment_max_age_s=s.ledger_segment_max_age_s,
                    local_max_bytes=s.ledger_local_max_bytes, durable_ack=s.ledger_ack == "durable")
    shipper = Shipper(ledger, sink, min_interval_s=s.ledger_ship_min_interval_ms / 1000,
                      poll_s=min(1.0, s.ledger_segment_max_age_s / 4), log=log, metrics=metrics)
    return ledger, shipper.start()
