"""Router overhead as users see it: direct to a fast loopback upstream versus through the router (and the
LiteLLM proxy when it is installed), interleaved in the same run, across a connection-count axis.

    .venv-router/bin/python bench/router_overhead.py [--label loopback-2core] [--duration-s 3] [--reps 3]
        [--rates 100,500,1000] [--conns 1,32,256,new] [--router-env TIERWISE_ROUTER_X=Y ...]
        [--litellm .venv-litellm/bin/litellm | --no-litellm]

Starts (all on 127.0.0.1, all stopped at the end): a stub OpenAI upstream (Starlette on
uvicorn+uvloop+httptools, one process), the router with the installed ``tierwise-router serve``
(one worker, memory budgets, ``LEDGER_FSYNC=batch`` with a 10 ms group-commit window, log level INFO
with the one JSON line per request going to a file), and, if found, the LiteLLM proxy (one worker,
master key, no database) in front of the same stub.

Load: an open-loop generator in a *separate process* per run (``bench/_openloop.py``), raw asyncio protocols
+ httptools on uvloop, one pre-framed request, callbacks instead of tasks (~20 µs of CPU per
request, so the generator is not the bottleneck on these 2 shared cores). Latency is measured from
each request's *scheduled* send time (no coordinated omission). The connection axis (``--conns``):
N keep-alive connections opened before the clock starts and used round-robin (a scheduled request
waits in a FIFO when all N are busy: one connection is serial HTTP/1.1), or ``new``: a new TCP
connection per request with ``connection: close``. For each connection count and rate, ``--reps``
rounds of direct → router run back to back; added latency per round is router pXX − direct pXX of
that round, and the reported ``added_*`` is the median over rounds (p50, p99, p99.9; ``*_pooled``
pools the rounds' samples, which p99.9 needs). The router's CPU per request is read from /proc.
LiteLLM runs in a second phase (direct → litellm rounds on 32 connections, ``--litellm-rates``,
default 100 req/s) because it saturates below that here and its leftover backlog would otherwise
load the router's runs. ``os.getloadavg()`` is recorded before each run: other engineers share
this machine. Writes bench/results/router_overhead/<label>.json with raw samples (µs).

This file owns the scenario (the stub, the router and LiteLLM set-up, the interleaved rounds, the
added-latency arithmetic and the result JSON); the load generator and one measured run are in
``_openloop.py``, the loopback plumbing shared with the other router benches in ``_router_load.py``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
sys.path.insert(0, str(REPO / "bench"))
from _meta import dirty_paths, router_package, wait_quiet  # noqa: E402
from _openloop import run_child  # noqa: E402
from _router_load import free_port, metric_lines, pct, start_router, stop_groups, wait_up  # noqa: E402
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


def conn_count(label: str) -> int:
    """``new`` → 0 (a new connection per request), else a positive number of keep-alive connections."""
    if label == "new":
        return 0
    n = int(label)
    if n <= 0:
        raise SystemExit(f"--conns: {label!r} must be a positive integer or 'new'")
    return n


def pooled_added(rounds: list[dict], name: str, q: float) -> float:
    """Added latency at quantile ``q`` over all rounds' samples pooled (p99.9 needs more samples than a
    round has: 3 s at 500 req/s is 1,500 samples, so a round's p99.9 is its second-worst request)."""
    r = [x for rd in rounds for x in rd[name]["samples_us"]]
    d = [x for rd in rounds for x in rd["direct"]["samples_us"]]
    return round((pct(r, q) - pct(d, q)) / 1000, 3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", default="loopback-2core")
    ap.add_argument("--duration-s", type=float, default=3.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rates", default="100,500,1000")
    ap.add_argument("--conns", default="1,32,256,new",
                    help="connection axis: keep-alive connection counts, and 'new' for a new connection per request")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--nice", type=int, default=None,
                    help="run this script and everything it starts at this niceness (e.g. -10, needs root): on a "
                         "shared machine, approximates the dedicated cores a deployed router has")
    ap.add_argument("--wait-quiet", default=None, metavar="LOAD[:MAX_WAIT_S]",
                    help="first wait until the 1-minute load average is <= LOAD (at most MAX_WAIT_S, default 600)")
    ap.add_argument("--litellm", default=str(REPO / ".venv-litellm" / "bin" / "litellm"),
                    help="LiteLLM CLI to measure side by side (skipped when missing)")
    ap.add_argument("--no-litellm", action="store_true")
    ap.add_argument("--litellm-rates", default="100",
                    help="LiteLLM runs in a second phase (direct ↔ litellm, 32 connections), only at these rates: it "
                         "saturates below 100 req/s here and its backlog would otherwise spill into the router's runs")
    ap.add_argument("--router-env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra TIERWISE_ROUTER_* settings for the router process (repeatable)")
    a = ap.parse_args()
    random.seed(a.seed)
    if a.nice is not None:  # children (stub, router, each load generator) inherit it
        os.setpriority(os.PRIO_PROCESS, 0, a.nice)
    quiet = None
    if a.wait_quiet:
        lim, _, mx = a.wait_quiet.partition(":")
        quiet = wait_quiet(float(lim), float(mx or 600))
        print(f"wait-quiet: {quiet}", flush=True)
    rates = [int(x) for x in a.rates.split(",")]
    conn_labels = [x.strip() for x in a.conns.split(",") if x.strip()]
    for c in conn_labels:
        conn_count(c)

    tmp = Path(tempfile.mkdtemp(prefix="tw-bench-"))
    (tmp / "stub.py").write_text(STUB)
    up_port, rt_port, ll_port = free_port(), free_port(), free_port()
    # Shaped like the README's example config (budgets, adapters, a Bedrock Tier 2 whose boto3 client is built
    # at start-up but never called here): the process then holds what a real deployment holds (~100k
    # objects with botocore's models), which is what a full GC pass has to walk.
    cfg = {"teams": [{"name": "bench", "api_key_sha256": [hashlib.sha256(KEY.encode()).hexdigest()],
                      "budgets": {"tokens_per_day": 10**12, "usd_per_month": "1000000"}}],
           "models": [{"name": "tiny", "kind": "vllm", "served_model_name": "tiny", "adapters": ["billing", "support"],
                       "endpoints": [f"http://127.0.0.1:{up_port}"],
                       "price": {"gpu_hour_usd": "1.2", "tokens_per_s": 1000}},
                      {"name": "claude-haiku", "kind": "bedrock", "model_id": "anthropic.claude-3-haiku-20240307-v1:0",
                       "region": "us-east-1", "endpoint_url": "http://127.0.0.1:9",
                       "price": {"input_usd_per_mtok": "0.25", "output_usd_per_mtok": "1.25"}}],
           "routing": {"tier1_model": "tiny", "tier2_model": "claude-haiku", "domain_adapters": {"math": "billing"}}}
    (tmp / "router.json").write_text(json.dumps(cfg))
    extra = dict(kv.split("=", 1) for kv in a.router_env)
    env = os.environ | {"TIERWISE_ROUTER_CONFIG_PATH": str(tmp / "router.json"), "TIERWISE_ROUTER_ENV": "test",
                        "TIERWISE_ROUTER_LEDGER_PATH": str(tmp / "ledger.jsonl"),
                        "TIERWISE_ROUTER_LEDGER_FSYNC": "batch", "TIERWISE_ROUTER_LOG_LEVEL": "INFO"} | extra
    common = ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
              "--host", "127.0.0.1"]
    procs = [subprocess.Popen([PY, "-m", "uvicorn", "stub:app", "--app-dir", str(tmp), "--port", str(up_port), *common],
                              start_new_session=True)]
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
        wait_up(procs[-1], f"http://127.0.0.1:{ll_port}/health/liveliness", timeout=180)
        run_child(targets["litellm"][0], 50, 1.0, body, LITELLM_KEY)  # warmup

    load_start = [round(x, 2) for x in os.getloadavg()]
    try:
        # The router is started the way users start it: the installed `tierwise-router serve` console script.
        procs.append(start_router(env, rt_port, tmp / "router.log", timeout_s=30))
        router_pid = procs[1].pid
        wait_up(procs[0], f"http://127.0.0.1:{up_port}/health")
        body = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "Say ok."}],
                           "max_tokens": 1}).encode()
        targets = {"direct": (f"http://127.0.0.1:{up_port}/v1/chat/completions", KEY),
                   "router": (f"http://127.0.0.1:{rt_port}/v1/chat/completions", KEY)}
        if litellm:
            targets["litellm"] = (f"http://127.0.0.1:{ll_port}/v1/chat/completions", LITELLM_KEY)
        for url, key in (targets["direct"], targets["router"]):  # warmup (imports, connection pools, caches)
            run_child(url, 200, 1.0, body, key)

        def phase(conns_: list[str], rates_: list[int], names: list[str]) -> dict:
            res: dict = {}
            for cl in conns_:
                res[cl] = {}
                for rate in rates_:
                    rounds = []
                    for _ in range(a.reps):  # interleaved: direct then proxied, back to back, each round
                        rounds.append({n: run_child(targets[n][0], rate, a.duration_s, body, targets[n][1],
                                                    conn_count(cl), router_pid if n == "router" else None)
                                       for n in names})
                    entry: dict = {"rounds": rounds}
                    for name in names[1:]:
                        for q in ("p50", "p99", "p999"):
                            diffs = [r[name][f"latency_{q}_ms"] - r["direct"][f"latency_{q}_ms"] for r in rounds]
                            entry[f"{name}_added_{q}_ms_per_round"] = [round(x, 3) for x in diffs]
                            entry[f"{name}_added_{q}_ms"] = round(statistics.median(diffs), 3)
                        for q, v in (("p50", 50), ("p99", 99), ("p999", 99.9)):
                            entry[f"{name}_added_{q}_ms_pooled"] = pooled_added(rounds, name, v)
                        entry[f"{name}_failed"] = sum(r[name]["failed"] for r in rounds)
                        entry[f"{name}_throughput_rps_min"] = min(r[name]["throughput_rps"] for r in rounds)
                    entry["direct_failed"] = sum(r["direct"]["failed"] for r in rounds)
                    entry["loadavg_1m_max"] = max(r[n]["loadavg_before"][0] for r in rounds for n in names)
                    res[cl][str(rate)] = entry
                    print(f"conns {cl:>4} {rate:>5} req/s " + " | ".join(
                        f"{n} p50 {statistics.median(r[n]['latency_p50_ms'] for r in rounds):.3f} "
                        f"p99 {statistics.median(r[n]['latency_p99_ms'] for r in rounds):.3f} "
                        f"p99.9 {statistics.median(r[n]['latency_p999_ms'] for r in rounds):.3f} "
                        f"failed {sum(r[n]['failed'] for r in rounds)}" for n in names)
                        + f" | load {entry['loadavg_1m_max']}", flush=True)
            return res

        results = phase(conn_labels, rates, ["direct", "router"])
        litellm_results: dict = {}
        if litellm:
            start_litellm()
            litellm_results = phase(["32"], [int(x) for x in a.litellm_rates.split(",")], ["direct", "litellm"])
        router_metrics = metric_lines(rt_port, ("tierwise_router_upstream_errors_total", "tierwise_router_requests_total",
                                                "tierwise_router_fallbacks_total", "tierwise_router_rejections_total",
                                                "tierwise_router_gc_pause_seconds_bucket",
                                                "tierwise_router_gc_pause_seconds_count",
                                                "tierwise_router_event_loop_lag_seconds_bucket",
                                                "tierwise_router_event_loop_lag_seconds_count"))
    finally:
        stop_groups(procs, 20)
    ledger_lines = sum(sum(1 for _ in open(f, "rb"))  # active file + segments sealed by rotation/shutdown
                       for f in [tmp / "ledger.jsonl", *(tmp / "sealed").glob("*.jsonl")] if f.exists())
    log_lines = sum(1 for _ in open(tmp / "router.log", "rb"))
    shutil.rmtree(tmp, ignore_errors=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    checks = {}
    for cl, target in (("32", "500"), ("32", "1000")):
        r = results.get(cl, {}).get(target)
        if r is not None:
            lim = 2.0 if target == "500" else 5.0
            checks[f"added_p99_ms_at_{target}_rps_32_conns"] = {"value": r["router_added_p99_ms"], "max": lim,
                                                               "met": r["router_added_p99_ms"] <= lim}
    doc = {"scenario": "router_overhead", "label": a.label,
           "metadata": {"git_sha": sha, "date": dt.datetime.now(dt.UTC).isoformat(), "python": platform.python_version(),
                        "host": platform.node(), "cpus": os.cpu_count(), "seed": a.seed, "duration_s": a.duration_s,
                        "reps": a.reps, "rates_rps": rates, "conns": conn_labels, "router_env_extra": extra,
                        "loadavg_start": load_start, "wait_quiet": quiet, "nice": a.nice,
                        "uncommitted_router_files": dirty_paths("workloads/router", "bench/router_overhead.py", "bench/_openloop.py", "bench/_router_load.py"),
                        "router_package": router_package(PY),
                        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
                        "config_hash": hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:12],
                        "upstream": "Starlette stub on uvicorn+uvloop+httptools (1 process)",
                        "router": "`tierwise-router serve` (uvicorn 1 worker, uvloop+httptools), memory budgets, "
                                  "LEDGER_FSYNC=batch (10 ms group commit), LOG_LEVEL=INFO (1 JSON line/request), "
                                  "README-shaped config with a (never called) Bedrock Tier 2",
                        "router_config": cfg,
                        "router_ledger_lines": ledger_lines, "router_metrics_end": router_metrics, "router_log_lines": log_lines,
                        "load": "open-loop, separate process per run, raw asyncio+httptools on uvloop, latency from "
                                "scheduled send time; N keep-alive connections opened before the clock, used "
                                "round-robin, requests wait in a FIFO when all are busy; 'new' = one TCP connection "
                                "per request (connection: close)",
                        "added": "router − direct per interleaved round, median over rounds (`*_pooled`: over all "
                                 "rounds' samples pooled, the better p99.9 estimate)",
                        "litellm": (f"litellm[proxy] {litellm_version}, 1 uvicorn worker, master key, no DB, "
                                    "spend logs off, logs silenced" if litellm else "not installed / skipped")},
           "targets": {"router_added_p99_ms_at_500_rps_32_conns_max": 2.0,
                       "router_added_p99_ms_at_1000_rps_32_conns_max": 5.0, "router_failed": 0},
           "checks": checks, "results": results, "litellm_results": litellm_results}
    out = REPO / "bench" / "results" / "router_overhead" / f"{a.label}.json"
    out.write_text(json.dumps(doc, indent=1) + "\n")
    for cl, by_rate in results.items():
        for rate, r in by_rate.items():
            print(f"conns {cl:>4} {rate:>5} req/s  router added p50 {r['router_added_p50_ms']:.3f} "
                  f"p99 {r['router_added_p99_ms']:.3f} p99.9(pooled) {r['router_added_p999_ms_pooled']:.3f} ms "
                  f"failed {r['router_failed']}")
    for cl, by_rate in litellm_results.items():
        for rate, r in by_rate.items():
            print(f"conns {cl:>4} {rate:>5} req/s  litellm added p50 {r['litellm_added_p50_ms']:.3f} "
                  f"p99 {r['litellm_added_p99_ms']:.3f} ms failed {r['litellm_failed']}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
