"""What the durable ledger costs: the router with ``LEDGER_ACK=local`` vs ``durable`` against the same
stub upstream and the same S3 (moto's ThreadedMotoServer on loopback), closed-loop load at a fixed
concurrency. Reports latency percentiles and throughput per mode, and what reaches S3: PUTs per second
(= S3 request cost), bytes per entry, entries stored vs answered (must be equal after a clean stop).

    .venv-router/bin/python bench/ledger_durable.py --label local-2core [--seconds 20 --concurrency 16]
        [--ship-min-interval-ms 100]

Loopback moto answers a PUT in about a millisecond; a real in-region S3 PUT takes tens of ms, which adds
to every durable-ack request's latency (the group commit keeps the PUT rate bounded either way).
The machine is shared: the result records the load average and waits (bounded) for a quiet moment.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import boto3
import httpx
import yaml
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _meta import dirty_paths, metadata, wait_quiet, write_result  # noqa: E402
from _router_load import free_port, start_moto, start_router as start_router_process  # noqa: E402

KEY = "sk-bench-ledger"


def start_upstream(port: int) -> None:
    async def chat(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"id": "c", "object": "chat.completion", "created": 1, "model": "tiny",
                                  "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                               "finish_reason": "stop"}],
                                  "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}})

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        app.router.add_get("/metrics", lambda r: web.Response(text='vllm:num_requests_waiting{model_name="tiny"} 0\n'))
        app.router.add_get("/health", lambda r: web.Response(text="ok"))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    threading.Thread(target=lambda: asyncio.run(main()), daemon=True).start()


def start_router(d: Path, up: int, port: int, moto: str, bucket: str, ack: str, interval_ms: float) -> subprocess.Popen:
    import hashlib

    cfg = {"teams": [{"name": "bench", "api_key_sha256": [hashlib.sha256(KEY.encode()).hexdigest()]}],
           "models": [{"name": "tiny", "kind": "vllm", "served_model_name": "tiny", "endpoints": [f"http://127.0.0.1:{up}"],
                       "price": {"gpu_hour_usd": "1.80", "tokens_per_s": 1000}, "timeout_s": 10}],
           "routing": {"tier1_model": "tiny", "saturation_waiting": 100000}}
    (d / "router.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "TIERWISE_ROUTER_CONFIG_PATH": str(d / "router.yaml"), "TIERWISE_ROUTER_ENV": "test",
           "TIERWISE_ROUTER_LEDGER_PATH": str(d / "ledger" / "ledger.jsonl"), "TIERWISE_ROUTER_LEDGER_ACK": ack,
           "TIERWISE_ROUTER_LEDGER_S3_BUCKET": bucket, "TIERWISE_ROUTER_LEDGER_S3_ENDPOINT_URL": moto,
           "TIERWISE_ROUTER_LEDGER_S3_REGION": "us-east-1", "TIERWISE_ROUTER_LOG_LEVEL": "WARNING",
           "TIERWISE_ROUTER_LEDGER_SHIP_MIN_INTERVAL_MS": str(interval_ms),
           "AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "test"}
    return start_router_process(env, port, d / f"router-{ack}.log")


async def load(url: str, seconds: float, concurrency: int) -> tuple[list[float], int, int]:
    lat: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds
    headers = {"authorization": f"Bearer {KEY}"}
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 3}

    async def worker(c: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            r = await c.post("/v1/chat/completions", json=body, headers=headers)
            if r.status_code == 200:
                lat.append((time.perf_counter() - t0) * 1000)
            else:
                errors += 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as c:
        await asyncio.gather(*(worker(c) for _ in range(concurrency)))
    return lat, errors, len(lat)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q * len(xs)))], 3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", required=True)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--warmup-s", type=float, default=3)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--max-load", type=float, default=1.5)
    ap.add_argument("--ship-min-interval-ms", type=float, default=100.0, help="durable acks: at most one PUT per this")
    a = ap.parse_args()
    quiet = wait_quiet(a.max_load, 120)
    up = free_port()
    moto, murl = start_moto()
    s3 = boto3.client("s3", endpoint_url=murl, region_name="us-east-1", aws_access_key_id="AKIDTEST",
                      aws_secret_access_key="test")
    start_upstream(up)
    modes = {}
    from tierwise_ledger import read_s3
    import datetime as dt

    for ack in ("local", "durable"):
        bucket = f"bench-{uuid.uuid4().hex[:10]}"
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
        d = Path(tempfile.mkdtemp(prefix=f"tw-ledger-bench-{ack}-"))
        port = free_port()
        p = start_router(d, up, port, murl, bucket, ack, a.ship_min_interval_ms)
        url = f"http://127.0.0.1:{port}"
        warm = asyncio.run(load(url, a.warmup_s, a.concurrency))[2]
        load_before = os.getloadavg()[0]
        t0 = time.monotonic()
        objs0 = s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0)
        lat, errors, n = asyncio.run(load(url, a.seconds, a.concurrency))
        wall = time.monotonic() - t0
        objs1 = sum(page.get("KeyCount", 0) for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket))
        p.send_signal(signal.SIGTERM)  # clean stop: seals and ships the rest
        p.wait(timeout=60)
        far = dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
        read = read_s3(s3, bucket, "ledger/router", *far)
        sizes = sum(o["Size"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                    for o in page.get("Contents", []))
        modes[ack] = {"completed": n, "failed": errors, "throughput_rps": round(n / wall, 1),
                      "latency_mean_ms": round(statistics.fmean(lat), 3), "latency_median_ms": pct(lat, 0.5),
                      "latency_p90_ms": pct(lat, 0.9), "latency_p99_ms": pct(lat, 0.99),
                      "s3_puts_per_s_under_load": round((objs1 - objs0) / wall, 2),
                      "entries_stored": len(read.entries), "entries_stored_twice": read.duplicates,
                      "answered_incl_warmup": warm + n, "answered_missing_from_s3": warm + n - len(read.entries),
                      "bytes_per_entry": round(sizes / max(1, len(read.entries)), 1),
                      "load_1m_before": round(load_before, 2), "load_1m_after": round(os.getloadavg()[0], 2),
                      "raw_latency_ms": [round(x, 3) for x in lat]}
        print(ack, {k: v for k, v in modes[ack].items() if k != "raw_latency_ms"})
    moto.stop()
    result = metadata(a.label, concurrency=a.concurrency, seconds=a.seconds, warmup_s=a.warmup_s,
                      s3="moto ThreadedMotoServer on loopback", upstream="aiohttp stub, instant",
                      fsync="batch (10 ms)", ship_min_interval_ms=a.ship_min_interval_ms)
    result.update({"quiet": quiet, "dirty": dirty_paths("workloads/router"), "modes": modes,
                   "durable_vs_local_p50_ms": round(modes["durable"]["latency_median_ms"] - modes["local"]["latency_median_ms"], 3)})
    print(write_result("ledger_durable", a.label, result))


if __name__ == "__main__":
    main()
