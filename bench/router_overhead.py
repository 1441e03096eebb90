"""Router overhead: direct to a fast loopback upstream versus through the router, same run.

    .venv-router/bin/python bench/router_overhead.py [--label NAME] [--duration-s 5]

Starts (all on 127.0.0.1, all stopped at the end): a stub OpenAI upstream (Starlette on
uvicorn+uvloop+httptools, one process), the router (uvicorn factory, one worker, memory budgets,
batched ledger), and drives an open-loop aiohttp load at 100, 500 and 1,000 req/s, alternating
direct and proxied per rate. Latency is measured from each request's *scheduled* send time (no
coordinated omission). Added latency = proxied − direct percentile. Writes
bench/results/router_overhead/<label>.json with raw samples (µs). Load generator, upstream and
router share the same 2 cores, so absolute numbers include that contention.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
KEY = "sk-bench"

STUB = textwrap.dedent('''
    import orjson
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route
    BODY = orjson.dumps({"id": "chatcmpl-stub", "object": "chat.completion", "created": 1, "model": "tiny",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13}})
    async def chat(request):
        await request.body()
        return Response(BODY, media_type="application/json")
    async def health(request):
        return Response(b"ok")
    async def metrics(request):
        return Response(b"vllm:num_requests_waiting 0\\n")
    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]), Route("/health", health),
                            Route("/metrics", metrics)])
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(url)


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else float("nan")


async def run_load(url: str, rate: int, duration_s: float, body: bytes, headers: dict) -> dict:
    n = int(rate * duration_s)
    lat: list[float] = []
    errors = 0
    conn = aiohttp.TCPConnector(limit=2000)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=30)) as s:
        pc = time.perf_counter  # uvloop's loop.time() has 1 ms resolution
        t0 = pc() + 0.05

        async def one(i: int) -> None:
            nonlocal errors
            sched = t0 + i / rate
            await asyncio.sleep(max(0.0, sched - pc()))
            try:
                async with s.post(url, data=body, headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                        return
            except Exception:  # noqa: BLE001
                errors += 1
                return
            lat.append((pc() - sched) * 1e6)

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        wall = time.perf_counter() - start
    return {"sent": n, "completed": len(lat), "failed": errors, "wall_s": round(wall, 3),
            "throughput_rps": round(len(lat) / wall, 1),
            "latency_p50_ms": round(pct(lat, 50) / 1000, 3), "latency_p90_ms": round(pct(lat, 90) / 1000, 3),
            "latency_p99_ms": round(pct(lat, 99) / 1000, 3),
            "latency_mean_ms": round(statistics.fmean(lat) / 1000, 3) if lat else None,
            "samples_us": [int(x) for x in lat]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", default="loopback-2core")
    ap.add_argument("--duration-s", type=float, default=5.0)
    ap.add_argument("--rates", default="100,500,1000")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    random.seed(a.seed)
    import uvloop

    tmp = Path(tempfile.mkdtemp(prefix="tw-bench-"))
    (tmp / "stub.py").write_text(STUB)
    up_port, rt_port = free_port(), free_port()
    cfg = {"teams": [{"name": "bench", "api_key_sha256": [hashlib.sha256(KEY.encode()).hexdigest()]}],
           "models": [{"name": "tiny", "kind": "vllm", "served_model_name": "tiny",
                       "endpoints": [f"http://127.0.0.1:{up_port}"],
                       "price": {"gpu_hour_usd": "1.2", "tokens_per_s": 1000}}],
           "routing": {"tier1_model": "tiny"}}
    (tmp / "router.json").write_text(json.dumps(cfg))
    env = os.environ | {"TIERWISE_ROUTER_CONFIG_PATH": str(tmp / "router.json"), "TIERWISE_ROUTER_ENV": "test",
                        "TIERWISE_ROUTER_LEDGER_PATH": str(tmp / "ledger.jsonl"), "TIERWISE_ROUTER_LOG_LEVEL": "WARNING"}
    common = ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
              "--host", "127.0.0.1"]
    procs = [subprocess.Popen([PY, "-m", "uvicorn", "stub:app", "--app-dir", str(tmp), "--port", str(up_port), *common],
                              start_new_session=True),
             subprocess.Popen([PY, "-m", "uvicorn", "--factory", "tierwise_router.app:create_app",
                               "--port", str(rt_port), *common], env=env, start_new_session=True)]
    try:
        wait_http(f"http://127.0.0.1:{up_port}/health")
        wait_http(f"http://127.0.0.1:{rt_port}/healthz")
        body = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "Say ok."}],
                           "max_tokens": 1}).encode()
        h = {"content-type": "application/json", "authorization": f"Bearer {KEY}"}
        direct = f"http://127.0.0.1:{up_port}/v1/chat/completions"
        proxied = f"http://127.0.0.1:{rt_port}/v1/chat/completions"

        async def all_runs() -> dict:
            await run_load(direct, 200, 1.0, body, h)  # warmup
            await run_load(proxied, 200, 1.0, body, h)
            out = {}
            for rate in [int(x) for x in a.rates.split(",")]:
                d = await run_load(direct, rate, a.duration_s, body, h)
                p = await run_load(proxied, rate, a.duration_s, body, h)
                out[str(rate)] = {"direct": d, "router": p,
                                  "added_p50_ms": round(p["latency_p50_ms"] - d["latency_p50_ms"], 3),
                                  "added_p99_ms": round(p["latency_p99_ms"] - d["latency_p99_ms"], 3),
                                  "router_failed": p["failed"]}
            return out

        results = uvloop.run(all_runs())
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=10)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    doc = {"scenario": "router_overhead", "label": a.label,
           "metadata": {"git_sha": sha, "date": dt.datetime.now(dt.UTC).isoformat(), "python": platform.python_version(),
                        "host": platform.node(), "cpus": os.cpu_count(), "seed": a.seed, "duration_s": a.duration_s,
                        "config_hash": hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:12],
                        "upstream": "Starlette stub on uvicorn+uvloop+httptools (1 process)",
                        "router": "tierwise_router, uvicorn 1 worker, uvloop+httptools, memory budgets, batched ledger",
                        "load": "open-loop aiohttp, latency from scheduled send time",
                        "litellm": "not measured in this run (see README)"},
           "targets": {"added_p99_ms_at_500_rps_max": 2.0, "router_failed_up_to_1000_rps": 0},
           "results": results}
    out = REPO / "bench" / "results" / "router_overhead" / f"{a.label}.json"
    out.write_text(json.dumps(doc, indent=1) + "\n")
    for rate, r in results.items():
        print(f"{rate:>5} req/s  direct p50 {r['direct']['latency_p50_ms']:.3f} p99 {r['direct']['latency_p99_ms']:.3f} | "
              f"router p50 {r['router']['latency_p50_ms']:.3f} p99 {r['router']['latency_p99_ms']:.3f} | "
              f"added p50 {r['added_p50_ms']:.3f} p99 {r['added_p99_ms']:.3f} ms | "
              f"tput {r['router']['throughput_rps']} failed {r['router_failed']}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
