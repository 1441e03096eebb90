"""`tierwise report costs --ledger-s3`: the report reads the router's durable ledger from S3 (moto's
ThreadedMotoServer on loopback: the real S3 wire protocol through boto3) with the router's own format
library, counts an entry stored twice once, and ignores what is not a ledger segment."""

from __future__ import annotations

import datetime as dt
import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from tierwise_ledger import encode_line, segment_key, segment_name
from typer.testing import CliRunner

from tierwise_observability.cli import app

PREFIX = "ledger/router"
T0 = dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    for k, v in {"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
                 "AWS_ENDPOINT_URL_S3": moto_url}.items():
        monkeypatch.setenv(k, v)
    return boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"ledger-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    return name


def entry(i: int, team: str, tier: int, usd: float, at: dt.datetime) -> dict[str, Any]:
    return {"ts": at.isoformat(), "entry_id": f"router-0.abc.{i:x}", "request_id": f"r{i}", "team": team,
            "model": "claude" if tier == 2 else "qwen", "tier": tier, "prompt_tokens": 10, "completion_tokens": 5,
            "cost_nano_usd": round(usd * 1e9)}


def put_segment(s3: Any, bucket: str, entries: list[dict[str, Any]], rand: int, tail: bytes = b"") -> str:
    first = dt.datetime.fromisoformat(entries[0]["ts"])
    key = segment_key(PREFIX, segment_name(first, "router-0", rand))
    s3.put_object(Bucket=bucket, Key=key, Body=b"".join(encode_line(e) for e in entries) + tail,
                  ChecksumAlgorithm="SHA256")
    return key


def report(*args: str) -> dict[str, Any]:
    r = CliRunner().invoke(app, ["costs", "--since", "2026-01-05T00:00Z", "--until", "2026-01-06T00:00Z",
                                 "--format", "json", *args])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_report_reads_the_durable_ledger_once_per_entry(s3: Any, bucket: str, tmp_path: Path) -> None:
    seg1 = [entry(i, "a", 2, 0.25, T0 + dt.timedelta(minutes=i)) for i in range(4)]
    seg2 = [entry(10 + i, "b", 1, 0.01, T0 + dt.timedelta(hours=1, minutes=i)) for i in range(3)]
    key1 = put_segment(s3, bucket, seg1, 1, tail=b'1234abcd {"torn":')  # a torn last line, counted not read
    put_segment(s3, bucket, seg2, 2)
    put_segment(s3, bucket, seg1[:2], 3)  # the same entries again under another key: counted once
    put_segment(s3, bucket, [entry(99, "a", 2, 1000.0, T0 + dt.timedelta(days=40))], 4)  # another month
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/dt=2026-01-05/README.txt", Body=b"x", ChecksumAlgorithm="SHA256")
    assert key1.startswith(f"{PREFIX}/dt=2026-01-05/")

    r = report("--ledger-s3", f"s3://{bucket}/{PREFIX}")
    i = r["inputs"]
    assert (i["ledger_entries"], i["ledger_duplicates_dropped"], i["ledger_skipped_corrupt_lines"]) == (7, 2, 1)
    assert i["ledger_segments"] == 3  # the 40-days-later partition is not even listed
    teams = {t["team"]: t for t in r["teams"]}
    assert teams["a"]["bedrock_usd"] == pytest.approx(1.0) and teams["a"]["calls"] == 4
    assert teams["b"]["tier1_chargeback_usd"] == pytest.approx(0.03) and teams["b"]["calls"] == 3

    # a segment still on a router's disk that S3 already holds is not counted again
    local = tmp_path / "sealed"
    local.mkdir()
    (local / "seg.jsonl").write_bytes(b"".join(encode_line(e) for e in seg2 + [entry(50, "b", 1, 0.01, T0)]))
    r = report("--ledger-s3", f"s3://{bucket}/{PREFIX}", "--ledger", str(tmp_path))
    assert r["inputs"]["ledger_entries"] == 8 and r["inputs"]["ledger_duplicates_dropped"] == 5
    assert {t["team"]: t["calls"] for t in r["teams"]} == {"a": 4, "b": 4}


def test_fails_with_a_clear_message(s3: Any, bucket: str) -> None:
    r = CliRunner().invoke(app, ["costs", "--ledger-s3", "ledger/router"])
    assert r.exit_code == 2 and "expected s3://<bucket>/<prefix>" in r.output
    r = CliRunner().invoke(app, ["costs"])
    assert r.exit_code == 2 and "no ledger given" in r.output
    r = CliRunner().invoke(app, ["costs", "--ledger-s3", f"s3://no-such-{bucket}/x"])
    assert r.exit_code == 2 and "cannot read the ledger" in r.output and "NoSuchBucket" in r.output
