"""Router overhead: direct to a fast loopback upstream versus through the router (and the LiteLLM
proxy when it is installed), interleaved in the same run.

    .venv-router/bin/python bench/router_overhead.py [--label loopback-2core] [--duration-s 3] [--reps 3]
        [--rates 100,500,1000] [--litellm .venv-litellm/bin/litellm | --no-litellm]

Starts (all on 127.0.0.1, all stopped at the end): a stub OpenAI upstream (Starlette on
uvicorn+uvloop+httptools, one process), the router (uvicorn factory, one worker, memory budgets,
``LEDGER_FSYNC=batch`` with a 10 ms group-commit window, log level INFO with the one JSON line per
request going to a file), and, if found, the LiteLLM proxy (one worker, master key, no database)
in front of the same stub.

Load: an open-loop generator in a *separate process* per run (``--loadgen``), raw asyncio protocols
+ httptools on uvloop, keep-alive connections, one pre-framed request, callbacks instead of tasks
(~20 µs of CPU per request, so the generator is not the bottleneck on these 2 shared cores).
Latency is measured from each request's *scheduled* send time (no coordinated omission). For each
rate, ``--reps`` rounds of direct → router run back to back; added latency per round is router pXX −
direct pXX of that round, and the reported ``added_*`` is the median over rounds. LiteLLM runs in a
second phase (direct → litellm rounds, ``--litellm-rates``, default 100 req/s) because it saturates
below that here and its leftover backlog would otherwise load the router's runs.
``os.getloadavg()`` is recorded before each run: other engineers share this machine.
Writes bench/results/router_overhead/<label>.json with raw samples (µs).
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
import shutil
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


def loadgen(url: str, rate: int, duration_s: float, body: bytes, auth: str) -> dict:
    """Open-loop load in this process (run as ``--loadgen`` in a child process). Returns samples."""
    import httptools
    import uvloop
    from urllib.parse import urlsplit

    u = urlsplit(url)
    req = (f"POST {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\ncontent-type: application/json\r\n"
           f"authorization: Bearer {auth}\r\ncontent-length: {len(body)}\r\n\r\n").encode() + body
    n = int(rate * duration_s)
    lat: list[int] = []
    st = {"failed": 0, "done": 0, "statuses": {}}
    idle: list = []
    pc = time.perf_counter  # uvloop's loop.time() has 1 ms resolution

    class Conn(asyncio.Protocol):
        def __init__(self) -> None:
            self.parser = httptools.HttpResponseParser(self)
            self.sched = 0.0
            self.busy = False
            self.transport = None

        def connection_made(self, t):  # noqa: ANN001
            self.transport = t

        def send(self, sched: float) -> None:
            self.sched, self.busy = sched, True
            self.transport.write(req)

        def data_received(self, data: bytes) -> None:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                self._fail()

        def on_message_complete(self) -> None:
            code = self.parser.get_status_code()
            st["done"] += 1
            if code == 200:
                lat.append(int((pc() - self.sched) * 1e6))
            else:
                st["failed"] += 1
                st["statuses"][code] = st["statuses"].get(code, 0) + 1
            self.busy = False
            if self.parser.should_keep_alive():
                idle.append(self)
            else:
                self.transport.close()

        def _fail(self) -> None:
            if self.busy:
                self.busy = False
                st["done"] += 1
                st["failed"] += 1
            self.transport.close()

        def connection_lost(self, exc) -> None:  # noqa: ANN001
            if self in idle:
                idle.remove(self)
            self._fail()

    async def run() -> float:
        loop = asyncio.get_running_loop()

        async def fire(sched: float) -> None:
            while idle:
                c = idle.pop()
                if not c.transport.is_closing():
                    c.send(sched)
                    return
            try:
                _, c = await loop.create_connection(Conn, u.hostname, u.port)
            except OSError:
                st["done"] += 1
                st["failed"] += 1
                return
            c.send(sched)

        t0 = pc() + 0.05
        i = 0
        start = pc()
        while i < n:
            now = pc()
            while i < n and t0 + i / rate <= now:
                sched = t0 + i / rate
                if idle and not idle[-1].transport.is_closing():
                    idle.pop().send(sched)
                else:
                    loop.create_task(fire(sched))
                i += 1
            if i < n:
                await asyncio.sleep(max(0.0, t0 + i / rate - pc()))
        deadline = pc() + 30
        while st["done"] < n and pc() < deadline:
            await asyncio.sleep(0.005)
        return pc() - start

    wall = uvloop.run(run())
    unanswered = n - st["done"]
    return {"sent": n, "completed": len(lat), "failed": st["failed"] + unanswered, "wall_s": round(wall, 3),
            "statuses_failed": {str(k): v for k, v in st["statuses"].items()}, "unanswered": unanswered,
            "samples_us": lat}


def summarise(r: dict) -> dict:
    lat = r["samples_us"]
    out = {k: r[k] for k in ("sent", "completed", "failed", "wall_s", "unanswered", "statuses_failed")}
    out.update({"throughput_rps": round(len(lat) / r["wall_s"], 1) if r["wall_s"] else 0.0,
                "latency_p50_ms": round(pct(lat, 50) / 1000, 3), "latency_p90_ms": round(pct(lat, 90) / 1000, 3),
                "latency_p99_ms": round(pct(lat, 99) / 1000, 3),
                "latency_mean_ms": round(statistics.fmean(lat) / 1000, 3) if lat else None,
                "samples_us": lat})
    return out


def run_child(url: str, rate: int, duration_s: float, body: bytes, auth: str) -> dict:
    """One load run in a fresh child process (the generator never shares an interpreter with anything)."""
    load = os.getloadavg()
    p = subprocess.run([PY, __file__, "--loadgen", url, str(rate), str(duration_s), auth],
                       input=body, capture_output=True, check=True, timeout=duration_s + 60)
    r = summarise(json.loads(p.stdout))
    r["loadavg_before"] = [round(x, 2) for x in load]
    return r


LITELLM_KEY = "sk-0123456789abcdef0123456789abcdef"  # loopback-only throwaway master key
LITELLM_CFG = """model_list:
  - model_name: tiny
    litellm_params: {{model: openai/tiny, api_base: "http://127.0.0.1:{port}/v1", api_key: sk-upstream}}
general_settings: {{master_key: {key}, disable_spend_logs: true}}
litellm_settings: {{drop_params: true}}
"""
QUIET_LOG = {"version": 1, "disable_existing_loggers": False,
             "handlers": {"null": {"class": "logging.NullHandler"}},
             "loggers": {n: {"handlers": ["null"], "level": "WARNING", "propagate": False}
                         for n in ("uvicorn", "uvicorn.access", "uvicorn.error", "LiteLLM", "LiteLLM Proxy",
                                   "LiteLLM Router")}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", default="loopback-2core")
    ap.add_argument("--duration-s", type=float, default=3.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rates", default="100,500,1000")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--litellm", default=str(REPO / ".venv-litellm" / "bin" / "litellm"),
                    help="LiteLLM CLI to measure side by side (skipped when missing)")
    ap.add_argument("--no-litellm", action="store_true")
    ap.add_argument("--litellm-rates", default="100",
                    help="LiteLLM runs in a second phase (direct ↔ litellm), only at these rates: it saturates "
                         "below 100 req/s here and its backlog would otherwise spill into the router's runs")
    ap.add_argument("--loadgen", nargs=4, metavar=("URL", "RATE", "DURATION_S", "KEY"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.loadgen:
        url, rate, dur, key = a.loadgen
        sys.stdout.write(json.dumps(loadgen(url, int(rate), float(dur), sys.stdin.buffer.read(), key)))
        return
    random.seed(a.seed)
    rates = [int(x) for x in a.rates.split(",")]

    tmp = Path(tempfile.mkdtemp(prefix="tw-bench-"))
    (tmp / "stub.py").write_text(STUB)
    up_port, rt_port, ll_port = free_port(), free_port(), free_port()
    cfg = {"teams": [{"name": "bench", "api_key_sha256": [hashlib.sha256(KEY.encode()).hexdigest()]}],
           "models": [{"name": "tiny", "kind": "vllm", "served_model_name": "tiny",
                       "endpoints": [f"http://127.0.0.1:{up_port}"],
                       "price": {"gpu_hour_usd": "1.2", "tokens_per_s": 1000}}],
           "routing": {"tier1_model": "tiny"}}
    (tmp / "router.json").write_text(json.dumps(cfg))
    env = os.environ | {"TIERWISE_ROUTER_CONFIG_PATH": str(tmp / "router.json"), "TIERWISE_ROUTER_ENV": "test",
                        "TIERWISE_ROUTER_LEDGER_PATH": str(tmp / "ledger.jsonl"),
                        "TIERWISE_ROUTER_LEDGER_FSYNC": "batch", "TIERWISE_ROUTER_LOG_LEVEL": "INFO"}
    common = ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
              "--host", "127.0.0.1"]
    router_log = open(tmp / "router.log", "wb")
    procs = [subprocess.Popen([PY, "-m", "uvicorn", "stub:app", "--app-dir", str(tmp), "--port", str(up_port), *common],
                              start_new_session=True),
             subprocess.Popen([PY, "-m", "uvicorn", "--factory", "tierwise_router.app:create_app",
                               "--port", str(rt_port), *common], env=env, start_new_session=True,
                              stderr=router_log)]
    litellm = None if a.no_litellm or not Path(a.litellm).exists() else a.litellm
    litellm_version = None
    if litellm:
        (tmp / "litellm.yaml").write_text(LITELLM_CFG.format(port=up_port, key=LITELLM_KEY))
        (tmp / "log.json").write_text(json.dumps(QUIET_LOG))
        litellm_version = subprocess.run([str(Path(litellm).parent / "python"), "-c",
                                          "import importlib.metadata as m; print(m.version('litellm'))"],
                                         capture_output=True, text=True).stdout.strip()

    def start_litellm() -> None:  # only for phase 2: an idle LiteLLM proxy still burns CPU on these 2 cores
        procs.append(subprocess.Popen([litellm, "--config", str(tmp / "litellm.yaml"), "--port", str(ll_port),
                                       "--host", "127.0.0.1", "--num_workers", "1", "--log_config", str(tmp / "log.json")],
                                      env=os.environ | {"LITELLM_LOG": "ERROR"}, start_new_session=True,
                                      stdout=subprocess.DEVNULL, stderr=open(tmp / "litellm.log", "wb")))
        wait_http(f"http://127.0.0.1:{ll_port}/health/liveliness", timeout=180)
        run_child(targets["litellm"][0], 50, 1.0, body, LITELLM_KEY)  # warmup

    load_start = [round(x, 2) for x in os.getloadavg()]
    try:
        wait_http(f"http://127.0.0.1:{up_port}/health")
        wait_http(f"http://127.0.0.1:{rt_port}/healthz")
        body = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "Say ok."}],
                           "max_tokens": 1}).encode()
        targets = {"direct": (f"http://127.0.0.1:{up_port}/v1/chat/completions", KEY),
                   "router": (f"http://127.0.0.1:{rt_port}/v1/chat/completions", KEY)}
        if litellm:
            targets["litellm"] = (f"http://127.0.0.1:{ll_port}/v1/chat/completions", LITELLM_KEY)
        for url, key in (targets["direct"], targets["router"]):  # warmup (imports, connection pools, JIT-free but cache-warm)
            run_child(url, 200, 1.0, body, key)
        def phase(rates_: list[int], names: list[str]) -> dict:
            res: dict = {}
            for rate in rates_:
                rounds = []
                for _ in range(a.reps):
                    rounds.append({n: run_child(targets[n][0], rate, a.duration_s, body, targets[n][1]) for n in names})
                entry: dict = {"rounds": rounds}
                for name in names[1:]:
                    for q in ("p50", "p99"):
                        diffs = [r[name][f"latency_{q}_ms"] - r["direct"][f"latency_{q}_ms"] for r in rounds]
                        entry[f"{name}_added_{q}_ms_per_round"] = [round(x, 3) for x in diffs]
                        entry[f"{name}_added_{q}_ms"] = round(statistics.median(diffs), 3)
                    entry[f"{name}_failed"] = sum(r[name]["failed"] for r in rounds)
                    entry[f"{name}_throughput_rps_min"] = min(r[name]["throughput_rps"] for r in rounds)
                res[str(rate)] = entry
                print(f"{rate:>5} req/s " + " | ".join(
                    f"{n} p50 {statistics.median(r[n]['latency_p50_ms'] for r in rounds):.3f} "
                    f"p99 {statistics.median(r[n]['latency_p99_ms'] for r in rounds):.3f} "
                    f"failed {sum(r[n]['failed'] for r in rounds)}" for n in names), flush=True)
            return res

        results = phase(rates, ["direct", "router"])
        litellm_results: dict = {}
        if litellm:
            start_litellm()
            litellm_results = phase([int(x) for x in a.litellm_rates.split(",")], ["direct", "litellm"])
        with urllib.request.urlopen(f"http://127.0.0.1:{rt_port}/metrics", timeout=10) as resp:
            router_metrics = [ln for ln in resp.read().decode().splitlines()
                              if ln.startswith(("tierwise_router_upstream_errors_total", "tierwise_router_requests_total",
                                                "tierwise_router_fallbacks_total", "tierwise_router_rejections_total"))]
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(p.pid, signal.SIGKILL)
        router_log.close()
    ledger_lines = sum(1 for _ in open(tmp / "ledger.jsonl", "rb")) if (tmp / "ledger.jsonl").exists() else 0
    log_lines = sum(1 for _ in open(tmp / "router.log", "rb"))
    shutil.rmtree(tmp, ignore_errors=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    doc = {"scenario": "router_overhead", "label": a.label,
           "metadata": {"git_sha": sha, "date": dt.datetime.now(dt.UTC).isoformat(), "python": platform.python_version(),
                        "host": platform.node(), "cpus": os.cpu_count(), "seed": a.seed, "duration_s": a.duration_s,
                        "reps": a.reps, "rates_rps": rates,
                        "loadavg_start": load_start, "loadavg_end": [round(x, 2) for x in os.getloadavg()],
                        "config_hash": hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:12],
                        "upstream": "Starlette stub on uvicorn+uvloop+httptools (1 process)",
                        "router": "tierwise_router, uvicorn 1 worker, uvloop+httptools, memory budgets, "
                                  "LEDGER_FSYNC=batch (10 ms group commit), LOG_LEVEL=INFO (1 JSON line/request)",
                        "router_ledger_lines": ledger_lines, "router_metrics_end": router_metrics, "router_log_lines": log_lines,
                        "load": "open-loop, separate process per run, raw asyncio+httptools on uvloop, keep-alive, "
                                "latency from scheduled send time",
                        "litellm": (f"litellm[proxy] {litellm_version}, 1 uvicorn worker, master key, no DB, "
                                    "spend logs off, logs silenced" if litellm else "not installed / skipped")},
           "targets": {"router_added_p99_ms_at_500_rps_max": 2.0, "router_failed_up_to_1000_rps": 0},
           "results": results, "litellm_results": litellm_results}
    out = REPO / "bench" / "results" / "router_overhead" / f"{a.label}.json"
    out.write_text(json.dumps(doc, indent=1) + "\n")
    for rate, r in results.items():
        print(f"{rate:>5} req/s  router added p50 {r['router_added_p50_ms']:.3f} p99 {r['router_added_p99_ms']:.3f} ms "
              f"failed {r['router_failed']}")
    for rate, r in litellm_results.items():
        print(f"{rate:>5} req/s  litellm added p50 {r['litellm_added_p50_ms']:.3f} p99 {r['litellm_added_p99_ms']:.3f} "
              f"ms failed {r['litellm_failed']}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
