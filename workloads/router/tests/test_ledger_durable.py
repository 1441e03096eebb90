"""The durable ledger: rotation, the local disk bound, shipping to S3 exactly once, and the e2e
done-when (kill the router mid-load, delete its ledger directory: nothing settled is missing from S3,
nothing is counted twice).

S3 is moto's ThreadedMotoServer on loopback: the real S3 REST protocol (conditional PUT, checksums,
object lock, versions) through boto3, not an in-process mock."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import yaml
from tierwise_ledger import LedgerRead, parse_segment_name, read_local, read_s3, segment_key

from conftest import KEY_A, free_port, make_config
from procs import start_moto, start_router
from tierwise_router.ledger import Ledger, read_ledger
from tierwise_router.settings import Settings
from tierwise_router.shipper import S3Sink, Shipper

PREFIX = "ledger/router"
SINCE = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
UNTIL = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


def entry(i: int, ts: str = "2026-01-05T10:00:00+00:00") -> dict[str, Any]:
    return {"ts": ts, "request_id": f"r{i}", "team": "a", "model": "m", "tier": 1, "prompt_tokens": 1,
            "completion_tokens": 1, "cost_nano_usd": 2}


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server, url = start_moto()
    yield url
    server.stop()


def s3_client(url: str) -> Any:
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="AKIDTEST",
                        aws_secret_access_key="test")


@pytest.fixture
def bucket(moto_url: str) -> str:
    """A fresh bucket shaped like the deployed one: versioned, object lock (governance, 1 day)."""
    name = f"ledger-{uuid.uuid4().hex[:12]}"
    s3 = s3_client(moto_url)
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    return name


def stored(s3: Any, bucket: str) -> LedgerRead:
    return read_s3(s3, bucket, PREFIX, SINCE, UNTIL)


def versions(s3: Any, bucket: str) -> list[str]:
    return [v["Key"] for v in s3.list_object_versions(Bucket=bucket).get("Versions", [])]


# ------------------------------------------------------------------------------ local rotation
def test_rotation_by_size_and_age_names_segments_by_first_entry(tmp_path: Path):
    led = Ledger(tmp_path / "ledger.jsonl", "always", replica="router-0", segment_max_bytes=64 << 10,
                 segment_max_age_s=3600)
    for i in range(600):  # ~190 B a line: 600 lines cross 64 KiB once
        led.append(entry(i))
    assert len(led.sealed_segments()) == 1 and led.segments_sealed == 1
    first, replica = parse_segment_name(led.sealed_segments()[0].name)
    assert first == dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC) and replica == "router-0"
    assert led.rotate_if_due() is None  # young: not due by age
    led.segment_max_age_s = 0.0
    assert led.rotate_if_due() is not None and len(led.sealed_segments()) == 2
    led.close()
    read = read_local([tmp_path])
    assert len(read.entries) == 600 and read.duplicates == 0 and read.corrupt_lines == 0
    assert len({e["entry_id"] for e in read.entries}) == 600


def test_a_second_process_cannot_open_the_same_ledger(tmp_path: Path):
    from tierwise_router.ledger import LedgerInUse

    led = Ledger(tmp_path / "ledger.jsonl", "always")
    with pytest.raises(LedgerInUse, match="its own TIERWISE_ROUTER_LEDGER_PATH"):
        Ledger(tmp_path / "ledger.jsonl", "always")
    led.close()


async def test_full_local_backlog_refuses_requests_and_fails_readiness(tmp_path, fake_vllm, client_for):
    fake, url = fake_vllm
    s = Settings(env="test", ledger_path=tmp_path / "ledger.jsonl", ledger_fsync="always", scrape_interval_s=0.05,
                 ledger_local_max_bytes=1 << 20, ledger_segment_max_bytes=64 << 10)
    async with client_for(s, make_config([url])) as c:
        h = {"authorization": f"Bearer {KEY_A}"}
        body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}
        assert (await c.post("/v1/chat/completions", json=body, headers=h)).status_code == 200
        st = c._transport.app.state.router  # type: ignore[attr-defined]
        st.ledger.sealed_bytes += 1 << 20  # the store has been unreachable: the backlog hit its bound
        r = await c.post("/v1/chat/completions", json=body, headers=h)
        assert r.status_code == 503 and r.json()["error"]["code"] == "ledger_unavailable"
        assert len(fake.calls) == 1  # refused before any model ran
        ready = await c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["ledger"] is False
        assert "tierwise_router_ledger_full 1.0" in (await c.get("/metrics")).text  # the gauge reads the ledger
        st.ledger.sealed_bytes -= 1 << 20


def test_fails_durable_ack_without_a_bucket(tmp_path: Path):
    with pytest.raises(ValueError, match="ledger_ack=durable needs"):
        Settings(env="test", ledger_path=tmp_path / "l.jsonl", ledger_ack="durable")
    with pytest.raises(ValueError, match="LEDGER_S3_BUCKET is required outside dev/test"):
        Settings(env="prod", ledger_path=tmp_path / "l.jsonl", budget_backend="memory")


# ------------------------------------------------------------------------------ shipping to S3
def test_ships_sealed_segments_and_deletes_them_only_after_confirmation(tmp_path: Path, moto_url: str, bucket: str):
    s3 = s3_client(moto_url)
    led = Ledger(tmp_path / "ledger.jsonl", "always", replica="router-0", segment_max_age_s=0.0)
    ship = Shipper(led, S3Sink(s3, bucket, PREFIX))
    for i in range(50):
        led.append(entry(i))
    assert ship.ship_once() == 1 and ship.shipped == 1
    assert led.sealed_segments() == [] and led.backlog_bytes == 0
    (key,) = versions(s3, bucket)
    assert key.startswith(f"{PREFIX}/dt=2026-01-05/20260105T100000.000000Z-router-0-") and key.endswith(".jsonl")
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ObjectLockMode"] == "GOVERNANCE"  # the bucket's default retention applied
    read = stored(s3, bucket)
    assert sorted(e["request_id"] for e in read.entries) == sorted(f"r{i}" for i in range(50))
    assert read.duplicates == 0
    ship.stop()


def test_store_down_keeps_segments_then_ships_when_back(tmp_path: Path, moto_url: str, bucket: str):
    led = Ledger(tmp_path / "ledger.jsonl", "always", segment_max_age_s=0.0)
    dead = S3Sink(s3_client(f"http://127.0.0.1:{free_port()}"), bucket, PREFIX)
    dead.client.meta.config.retries = {"max_attempts": 1}
    ship = Shipper(led, dead)
    led.append(entry(1))
    with pytest.raises(Exception):  # noqa: B017 — connection refused, whatever botocore calls it
        ship.ship_once()
    assert len(led.sealed_segments()) == 1 and led.backlog_bytes > 0  # kept: not confirmed
    ship.sink = S3Sink(s3_client(moto_url), bucket, PREFIX)
    assert ship.ship_once() == 1 and led.sealed_segments() == []
    assert [e["request_id"] for e in stored(s3_client(moto_url), bucket).entries] == ["r1"]
    ship.stop()


def test_crash_between_write_and_ship_ships_on_restart(tmp_path: Path, moto_url: str, bucket: str):
    s3 = s3_client(moto_url)
    path = tmp_path / "ledger.jsonl"
    led = Ledger(path, "always", segment_max_bytes=64 << 10)
    for i in range(400):  # one sealed segment (size) plus an active remainder
        led.append(entry(i))
    assert len(led.sealed_segments()) == 1 and read_ledger(path)[0]
    with open(path, "ab") as fh:
        fh.write(b'1234abcd {"torn":')  # the crash tore the last write
    os.close(led._fd), os.close(led._lockfd)  # the process died: nothing shipped, nothing sealed
    led2 = Ledger(path, "always")  # restart on the same volume: the active file is sealed at start
    assert len(led2.sealed_segments()) == 2 and read_ledger(path) == ([], 0)
    ship = Shipper(led2, S3Sink(s3, bucket, PREFIX))
    assert ship.ship_once() == 2
    read = stored(s3, bucket)
    assert sorted(int(e["request_id"][1:]) for e in read.entries) == list(range(400))
    assert read.corrupt_lines == 1 and read.duplicates == 0
    ship.stop()


def test_retry_after_a_lost_response_stores_no_second_copy(tmp_path: Path, moto_url: str, bucket: str):
    """The PUT succeeded but the process died before deleting the local file: the next attempt gets
    412 from the conditional PUT, counts it as confirmed, and no second object or version exists."""
    s3 = s3_client(moto_url)
    led = Ledger(tmp_path / "ledger.jsonl", "always", segment_max_age_s=0.0)
    for i in range(10):
        led.append(entry(i))
    led.rotate()
    (seg,) = led.sealed_segments()
    sink = S3Sink(s3, bucket, PREFIX)
    assert sink.put(seg.stem, seg.read_bytes()) is True  # ... and then the crash
    ship = Shipper(led, sink)
    assert ship.ship_once() == 1 and ship.already_stored == 1 and ship.shipped == 0
    assert led.sealed_segments() == []
    assert len(versions(s3, bucket)) == 1
    read = stored(s3, bucket)
    assert len(read.entries) == 10 and read.duplicates == 0
    ship.stop()


def test_reader_dedupes_an_entry_stored_twice(tmp_path: Path, moto_url: str, bucket: str):
    """Second line of defence: the same entries under two keys (a copied object) count once."""
    s3 = s3_client(moto_url)
    led = Ledger(tmp_path / "ledger.jsonl", "always", segment_max_age_s=0.0)
    ship = Shipper(led, S3Sink(s3, bucket, PREFIX))
    for i in range(5):
        led.append(entry(i))
    ship.ship_once()
    (key,) = versions(s3, bucket)
    copy = segment_key(PREFIX, "20260105T100001.000000Z-router-9-00000000deadbeef")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=copy, Body=body, ChecksumAlgorithm="SHA256")
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/dt=2026-01-05/notes.txt", Body=b"x", ChecksumAlgorithm="SHA256")
    read = stored(s3, bucket)
    assert len(read.entries) == 5 and read.duplicates == 5 and read.segments == 2
    ship.stop()


# ------------------------------------------------------------------------------ e2e: kill + delete
def _start_router(d: Path, cfg_path: Path, port: int, moto_url: str, bucket: str, ack: str) -> subprocess.Popen:
    env = {**os.environ, "TIERWISE_ROUTER_CONFIG_PATH": str(cfg_path), "TIERWISE_ROUTER_ENV": "test",
           "TIERWISE_ROUTER_LEDGER_PATH": str(d / "ledger.jsonl"), "TIERWISE_ROUTER_LEDGER_ACK": ack,
           "TIERWISE_ROUTER_LEDGER_S3_BUCKET": bucket, "TIERWISE_ROUTER_LEDGER_S3_ENDPOINT_URL": moto_url,
           "TIERWISE_ROUTER_LEDGER_S3_REGION": "us-east-1", "TIERWISE_ROUTER_LEDGER_REPLICA_ID": "router-e2e",
           "TIERWISE_ROUTER_LEDGER_SHIP_MIN_INTERVAL_MS": "20", "TIERWISE_ROUTER_LEDGER_SEGMENT_MAX_AGE_S": "0.5",
           # local acks: fsync per entry, so an answered request is on disk (batch may lose its window)
           "TIERWISE_ROUTER_LEDGER_FSYNC": "always" if ack == "local" else "batch",
           "AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "test", "TIERWISE_ROUTER_SCRAPE_INTERVAL_S": "1"}
    return start_router(env, port, d.parent / f"router-{port}.log")


async def _load(url: str, results: dict[str, httpx.Response | None], concurrency: int = 16) -> None:
    """Closed-loop load with unique request ids until the router dies; None = no answer."""
    done = asyncio.Event()

    async def worker(w: int, c: httpx.AsyncClient) -> None:
        n = 0
        while not done.is_set():
            rid = f"w{w}-{n}"
            n += 1
            try:
                results[rid] = await c.post("/v1/chat/completions", headers={
                    "authorization": f"Bearer {KEY_A}", "x-request-id": rid},
                    json={"model": "tiny", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 3})
            except httpx.HTTPError:
                results[rid] = None
                done.set()

    async with httpx.AsyncClient(base_url=url, timeout=10) as c:
        await asyncio.gather(*(worker(w, c) for w in range(concurrency)))


@pytest.mark.e2e
@pytest.mark.parametrize("ack", ["durable", "local"])
async def test_e2e_kill_router_mid_load_and_delete_its_ledger(ack, tmp_path, fake_vllm, moto_url, bucket):
    """durable: SIGKILL mid-load, delete the ledger directory → every request answered
    ``x-tierwise-ledger: durable`` is in S3 exactly once.
    local (fsync always): SIGKILL mid-load, keep the volume, restart → every answered request is in S3
    exactly once (crash between write and ship)."""
    _, up = fake_vllm
    d = tmp_path / "ledger"
    d.mkdir()
    cfg = tmp_path / "router.yaml"
    cfg.write_text(yaml.safe_dump(make_config([up]).model_dump(mode="json", exclude_none=True)))
    port = free_port()
    proc = _start_router(d, cfg, port, moto_url, bucket, ack)
    try:
        results: dict[str, httpx.Response | None] = {}
        load = asyncio.create_task(_load(f"http://127.0.0.1:{port}", results))
        while True:  # let it run until S3 holds a few segments and 300 answers, then kill it mid-load
            await asyncio.sleep(0.2)
            if (len(results) >= 300 and len(await asyncio.to_thread(versions, s3_client(moto_url), bucket)) >= 3) \
                    or load.done():
                break
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        await load
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    answered = {rid for rid, r in results.items() if r is not None and r.status_code == 200}
    assert len(answered) >= 300
    if ack == "durable":
        settled = {rid for rid in answered if results[rid].headers.get("x-tierwise-ledger") == "durable"}
        assert settled == answered  # S3 was healthy: no ack timed out
        shutil.rmtree(d)  # the pod's volume is gone
    else:
        assert all("x-tierwise-ledger" not in results[rid].headers for rid in answered)
        settled = answered
        proc = _start_router(d, cfg, port, moto_url, bucket, ack)  # same volume: recover and ship
        deadline = time.monotonic() + 30
        while list((d / "sealed").glob("*.jsonl")) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    read = stored(s3_client(moto_url), bucket)
    ids = [e["request_id"] for e in read.entries]
    assert settled <= set(ids), f"missing from S3: {sorted(settled - set(ids))[:10]}"
    assert len(ids) == len(set(ids)), "a request counted twice"
    assert read.duplicates == 0  # no entry stored twice in the first place
    # at-least-once: an entry may be stored for a request whose answer the kill cut off, never one
    # that did not reach the upstream
    assert set(ids) <= set(results)


# ------------------------------------------------------------------------------ durable acks in the app
def _durable_settings(tmp_path: Path, endpoint: str, bucket: str, **over: Any) -> Settings:
    return Settings(env="test", ledger_path=tmp_path / "ledger.jsonl", scrape_interval_s=0.05, ledger_ack="durable",
                    ledger_s3_bucket=bucket, ledger_s3_endpoint_url=endpoint, ledger_s3_region="us-east-1",
                    ledger_ship_min_interval_ms=0, ledger_replica_id="router-t", **over)


async def test_durable_ack_answers_only_once_s3_holds_the_entry(tmp_path, fake_vllm, client_for, moto_url, bucket):
    _, url = fake_vllm
    s3 = s3_client(moto_url)
    h = {"authorization": f"Bearer {KEY_A}"}
    async with client_for(_durable_settings(tmp_path, moto_url, bucket), make_config([url])) as c:
        r = await c.post("/v1/chat/completions", headers={**h, "x-request-id": "plain-1"},
                         json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200 and r.headers["x-tierwise-ledger"] == "durable"
        assert [e["request_id"] for e in stored(s3, bucket).entries] == ["plain-1"]  # before the app stops
        async with c.stream("POST", "/v1/chat/completions", headers={**h, "x-request-id": "stream-1"},
                            json={"model": "tiny", "stream": True,
                                  "messages": [{"role": "user", "content": "hi"}]}) as s:
            body = b"".join([chunk async for chunk in s.aiter_bytes()])
        assert b"[DONE]" in body
        # the stream's body ended only after its entry was confirmed
        assert sorted(e["request_id"] for e in stored(s3, bucket).entries) == ["plain-1", "stream-1"]
    assert list((tmp_path / "sealed").glob("*.jsonl")) == []


async def test_durable_ack_timeout_answers_pending_and_keeps_the_entry(tmp_path, fake_vllm, client_for, bucket):
    _, url = fake_vllm
    dead = f"http://127.0.0.1:{free_port()}"
    s = _durable_settings(tmp_path, dead, bucket, ledger_ack_timeout_s=0.3)
    async with client_for(s, make_config([url])) as c:
        r = await c.post("/v1/chat/completions", headers={"authorization": f"Bearer {KEY_A}", "x-request-id": "p-1"},
                         json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200 and r.headers["x-tierwise-ledger"] == "pending"
        st = c._transport.app.state.router  # type: ignore[attr-defined]
        st.ledger.wake.set()
    # the store never answered: the entry is still on local disk for the next start to ship
    read = read_local([tmp_path])
    assert [e["request_id"] for e in read.entries] == ["p-1"]
