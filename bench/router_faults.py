"""The router under faults at load: success rate, fallbacks, p99, and exact budget and ledger accounting.

    .venv-router/bin/python bench/router_faults.py [--label loopback-2core] [--clients 200] [--duration-s 10]
        [--mixes healthy,t1_5xx,...] [--seed 1]

Starts on 127.0.0.1 (all stopped at the end): ``redis-server`` (budgets, as in production with several
replicas), one stub process serving two Tier-1 replicas (OpenAI/vLLM shape) and a Bedrock Converse wire
stub (REST-JSON, the errors boto3 parses: ``x-amzn-ErrorType: ThrottlingException`` with 429), and, for
each fault mix, a fresh router (``tierwise-router serve``, Redis budgets, ``LEDGER_FSYNC=batch``).

Faults, each at its own rate (drawn per request from a seeded RNG in the stub):
- ``t1_5xx``: Tier-1 answers 503 with an error body;
- ``t1_hang``: Tier-1 reads the request and sends nothing for ``--hang-s`` (past the model's ``timeout_s``);
- ``t1_reset``: Tier-1 sends the status line, headers and half the body, then resets the TCP connection
  (SO_LINGER 0 → RST);
- ``t2_throttle``: Bedrock answers ThrottlingException (the router retries with backoff, then 429).

Load: ``--clients`` concurrent closed-loop clients (aiohttp, one keep-alive connection each) for
``--duration-s``; each request carries its own ``x-request-id``. Teams: two with room to spare, one
whose ``tokens_per_day`` and one whose ``usd_per_month`` are set so that part of their requests *must*
be refused (429 ``insufficient_quota``).

Per mix the JSON reports: success rate over requests not refused for budget (the target, ≥ 99.9 %,
applies to mixes where Tier 2 is healthy), refusals by team and budget (a refusal for a team with room
is an error), fallbacks by reason, p50/p99 latency, and two exact checks:
- budgets: each team's Redis counters equal the sum of its ledger entries (tokens and nano-USD) after
  the run — a reservation that was never settled or released shows up as a difference (leak), and a
  counter above its limit is an overrun; Redis' own command counts give reservations made (EVALSHA
  minus refusals) against settlements + releases (MULTI transactions): they must be equal;
- ledger: one entry per 200 response (same request id), no duplicates, none for a failed request.

This file owns the scenario: the fault mixes, the teams and their budgets, the closed-loop clients, one
router per mix, and the result JSON. The stub process is ``_faults_stubs.py``, the checks and per-mix
numbers are ``_faults_check.py``, the loopback plumbing shared with the other router benches (Redis and
router start-up, ports, percentiles) is ``_router_load.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
sys.path.insert(0, str(REPO / "bench"))
from _meta import dirty_paths, metadata, router_package, wait_quiet  # noqa: E402
from _faults_check import evaluate, redis_state  # noqa: E402
from _router_load import ROUTER_TESTS, free_port, metric_lines, start_redis, start_router, stop_groups, wait_up  # noqa: E402

MIXES: dict[str, dict[str, float]] = {
    "healthy": {},
    "t1_5xx": {"t1_5xx": 0.10},
    "t1_hang": {"t1_hang": 0.05},
    "t1_reset": {"t1_reset": 0.10},
    "t1_all": {"t1_5xx": 0.05, "t1_hang": 0.02, "t1_reset": 0.05},
    "t1_all+t2_throttle": {"t1_5xx": 0.05, "t1_hang": 0.02, "t1_reset": 0.05, "t2_throttle": 0.20},
    "t1_down+t2_throttle": {"t1_5xx": 1.0, "t2_throttle": 0.30},
}
# Tier 2 counts as healthy when it is not throttling (the router's retries absorb *some* throttling;
# the JSON shows how much).
TIER2_HEALTHY = {"healthy", "t1_5xx", "t1_hang", "t1_reset", "t1_all"}


TEAMS = {  # name → (key, budgets); limits sized for the default 200 clients × 10 s (see run_mix)
    "team-a": ("sk-fault-a", {"tokens_per_day": 500_000_000, "usd_per_month": "100000"}),
    "team-b": ("sk-fault-b", {}),
    "tight-tokens": ("sk-fault-tt", {"tokens_per_day": 12_000}),
    "tight-usd": ("sk-fault-tu", {"usd_per_month": "0.0030"}),
}
CLIENT_TEAMS = ["team-a"] * 8 + ["team-b"] * 6 + ["tight-tokens"] * 3 + ["tight-usd"] * 3  # per 20 clients


def post_json(url: str, obj: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(obj).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


async def drive(url: str, clients: int, duration_s: float, max_tokens: int, timeout_s: float) -> list[dict]:
    """``clients`` closed-loop clients, each on its own keep-alive connection. One record per request."""
    import aiohttp

    out: list[dict] = []
    end = time.perf_counter() + duration_s
    conn = aiohttp.TCPConnector(limit=clients, force_close=False)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=timeout_s)) as s:
        async def client(i: int) -> None:
            team = CLIENT_TEAMS[i % len(CLIENT_TEAMS)]
            key = TEAMS[team][0]
            n = 0
            while time.perf_counter() < end:
                rid = f"c{i:03d}-{n:06d}"
                n += 1
                body = {"model": "tiny", "max_tokens": max_tokens,
                        "messages": [{"role": "user", "content": f"client {i} request {n}: say ok."}]}
                rec = {"rid": rid, "team": team}
                t0 = time.perf_counter()
                try:
                    async with s.post(url, json=body, headers={"authorization": f"Bearer {key}",
                                                               "x-request-id": rid}) as r:
                        data = await r.read()
                        rec["status"] = r.status
                        rec["fallback"] = r.headers.get("x-tierwise-fallback")
                        rec["tier"] = r.headers.get("x-tierwise-tier")
                        rec["rid_echo"] = r.headers.get("x-request-id")
                        obj = json.loads(data)
                        if r.status == 200:
                            rec["valid"] = bool(obj.get("choices")) and obj["choices"][0]["message"]["content"] is not None
                        else:
                            err = obj.get("error") or {}
                            rec["code"] = err.get("code")
                            rec["valid"] = isinstance(err.get("message"), str) and "type" in err
                except (aiohttp.ClientError, TimeoutError, ValueError) as e:
                    rec["status"] = "exc"
                    rec["code"] = e.__class__.__name__
                rec["latency_ms"] = (time.perf_counter() - t0) * 1000
                out.append(rec)

        await asyncio.gather(*(client(i) for i in range(clients)))
    return out


def router_counters(port: int) -> dict:
    lines = metric_lines(port, ("tierwise_router_rejections_total", "tierwise_router_fallbacks_total",
                                "tierwise_router_upstream_errors_total", "tierwise_router_requests_total"))
    return {name: float(v) for name, _, v in (ln.rpartition(" ") for ln in lines)}


def run_mix(name: str, faults: dict[str, float], a: argparse.Namespace, tmp: Path, ports: dict[str, int],
            redis_url: str) -> dict:
    import redis

    rc = redis.Redis.from_url(redis_url)
    rc.flushall()
    rc.config_resetstat()
    rc.close()
    post_json(f"http://127.0.0.1:{ports['control']}/_faults",
              {"t1_5xx": 0.0, "t1_hang": 0.0, "t1_reset": 0.0, "t2_throttle": 0.0, "hang_s": a.hang_s,
               "seed": a.seed} | faults)
    cfg = {"teams": [{"name": t, "api_key_sha256": [hashlib.sha256(k.encode()).hexdigest()], "budgets": b}
                     for t, (k, b) in TEAMS.items()],
           "models": [{"name": "tiny", "kind": "vllm", "served_model_name": "tiny",
                       "endpoints": [f"http://127.0.0.1:{ports['t1a']}", f"http://127.0.0.1:{ports['t1b']}"],
                       "timeout_s": a.tier1_timeout_s, "price": {"gpu_hour_usd": "1.20", "tokens_per_s": 1000}},
                      {"name": "claude", "kind": "bedrock", "model_id": "anthropic.claude-stub-v1:0",
                       "region": "us-east-1", "endpoint_url": f"http://127.0.0.1:{ports['t2']}", "timeout_s": 10,
                       "max_attempts": 4, "backoff_base_s": 0.05,
                       "price": {"input_usd_per_mtok": "3", "output_usd_per_mtok": "15"}}],
           "routing": {"tier1_model": "tiny", "tier2_model": "claude", "breaker_failures": 5, "breaker_reset_s": 2}}
    d = tmp / name
    d.mkdir()
    (d / "router.json").write_text(json.dumps(cfg))
    port = free_port()
    env = os.environ | {"TIERWISE_ROUTER_CONFIG_PATH": str(d / "router.json"), "TIERWISE_ROUTER_ENV": "test",
                        "TIERWISE_ROUTER_BUDGET_BACKEND": "redis", "TIERWISE_ROUTER_REDIS_URL": redis_url,
                        "TIERWISE_ROUTER_LEDGER_PATH": str(d / "ledger.jsonl"),
                        "TIERWISE_ROUTER_LEDGER_FSYNC": "batch", "TIERWISE_ROUTER_LOG_LEVEL": "WARNING",
                        "AWS_ACCESS_KEY_ID": "AKIDSTUB", "AWS_SECRET_ACCESS_KEY": "stub", "AWS_EC2_METADATA_DISABLED": "true"}
    load0 = [round(x, 2) for x in os.getloadavg()]
    router = start_router(env, port, d / "router.log", timeout_s=30)
    try:
        t0 = time.perf_counter()
        recs = asyncio.run(drive(f"http://127.0.0.1:{port}/v1/chat/completions", a.clients, a.duration_s,
                                 a.max_tokens, a.client_timeout_s))
        wall = time.perf_counter() - t0
        counters = router_counters(port)
    finally:
        stop_groups([router], 30)  # SIGTERM first: the ledger writer drains and fsyncs on shutdown
    stub_stats = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{ports['control']}/_faults").read())["stats"]
    rs = redis_state(redis_url, list(TEAMS))

    from tierwise_router.ledger import read_ledger

    entries, bad = [], 0  # the active file and the segments sealed by rotation / at shutdown
    for f in [d / "ledger.jsonl", *sorted((d / "sealed").glob("*.jsonl"))]:
        e, b = read_ledger(f)
        entries += e
        bad += b
    res = evaluate(faults, recs, wall, counters, stub_stats, rs, entries, bad, load0, teams=TEAMS,
                   tier2_healthy=name in TIER2_HEALTHY)
    logged: collections.Counter = collections.Counter()  # the router's WARNING+ events, by kind
    for ln in (d / "router.log").read_bytes().splitlines():
        try:
            ev = json.loads(ln)
            logged[f"{ev.get('level')}:{ev.get('event')}:{ev.get('error', '')}:{str(ev.get('detail', ''))[:80]}"] += 1
        except ValueError:
            logged[f"raw:{ln[:100].decode(errors='replace')}"] += 1
    res["router_log_events"] = dict(logged.most_common(20))
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", default="loopback-2core")
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--duration-s", type=float, default=10.0)
    ap.add_argument("--mixes", default=",".join(MIXES), help=f"comma-separated, from: {', '.join(MIXES)}")
    ap.add_argument("--set", action="append", default=[], metavar="MIX:FAULT=RATE",
                    help="override a rate, e.g. t1_5xx:t1_5xx=0.2 (repeatable); a new MIX name defines a new mix")
    ap.add_argument("--hang-s", type=float, default=3.0)
    ap.add_argument("--tier1-timeout-s", type=float, default=1.0)
    ap.add_argument("--max-tokens", type=int, default=8)
    ap.add_argument("--client-timeout-s", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--wait-quiet", default=None, metavar="LOAD[:MAX_WAIT_S]",
                    help="first wait until the 1-minute load average is <= LOAD (at most MAX_WAIT_S, default 600)")
    a = ap.parse_args()
    if a.hang_s <= a.tier1_timeout_s:
        raise SystemExit(f"--hang-s ({a.hang_s}) must exceed --tier1-timeout-s ({a.tier1_timeout_s}): a hang is "
                         "a Tier-1 call that outlives the router's timeout")
    mixes = {k: dict(v) for k, v in MIXES.items()}
    for s in a.set:
        try:
            mix, kv = s.split(":", 1)
            k, v = kv.split("=", 1)
            rate = float(v)
        except ValueError:
            raise SystemExit(f"--set {s!r}: expected MIX:FAULT=RATE, e.g. t1_5xx:t1_5xx=0.2") from None
        if k not in ("t1_5xx", "t1_hang", "t1_reset", "t2_throttle") or not 0 <= rate <= 1:
            raise SystemExit(f"--set {s!r}: FAULT must be t1_5xx|t1_hang|t1_reset|t2_throttle and RATE in [0, 1]")
        mixes.setdefault(mix, {})[k] = rate
        if mix not in a.mixes.split(","):
            a.mixes += "," + mix
    names = [m for m in a.mixes.split(",") if m]
    unknown = [m for m in names if m not in mixes]
    if unknown:
        raise SystemExit(f"--mixes: unknown {unknown}; known: {sorted(mixes)}")
    for m in names:
        t1 = sum(v for k, v in mixes[m].items() if k.startswith("t1_"))
        if t1 > 1:
            raise SystemExit(f"mix {m!r}: Tier-1 fault rates sum to {t1} > 1")

    random.seed(a.seed)
    quiet = None
    if a.wait_quiet:
        lim, _, mx = a.wait_quiet.partition(":")
        quiet = wait_quiet(float(lim), float(mx or 600))
        print(f"wait-quiet: {quiet}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="tw-faults-"))
    ports = {k: free_port() for k in ("t1a", "t1b", "t2", "control")}
    redis_exe = shutil.which("redis-server")
    if redis_exe is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server; the Makefile's .make/system)")
    redis_proc, redis_url = start_redis(redis_exe, tmp, new_session=True)
    stubs = subprocess.Popen([PY, str(REPO / "bench" / "_faults_stubs.py"), str(ports["t1a"]), str(ports["t1b"]), str(ports["t2"]),
                              str(ports["control"]), str(a.seed), str(ROUTER_TESTS)],
                             start_new_session=True)
    load_start = [round(x, 2) for x in os.getloadavg()]
    results = {}
    try:
        wait_up(stubs, f"http://127.0.0.1:{ports['control']}/_faults")
        for m in names:
            r = run_mix(m, mixes[m], a, tmp, ports, redis_url)
            results[m] = r
            print(f"{m:<22} n={r['requests']:>6} ok={r['ok']:>6} refused={r['budget_refused']:>5} "
                  f"success={r['success_rate'] * 100:.3f}% fallbacks={sum(r['fallbacks_by_reason'].values()):>5} "
                  f"p99={r['latency_ok_ms']['p99']} ms budgets_exact={r['budgets']['exact']} "
                  f"ledger_exact={r['ledger']['exact']} failures={r['failures']}", flush=True)
    finally:
        stop_groups([stubs, redis_proc], 10)
        shutil.rmtree(tmp, ignore_errors=True)
    meta = metadata(a.label, clients=a.clients, duration_s=a.duration_s, hang_s=a.hang_s,
                    tier1_timeout_s=a.tier1_timeout_s, max_tokens=a.max_tokens, seed=a.seed,
                    client_timeout_s=a.client_timeout_s, mixes={m: mixes[m] for m in names},
                    teams={t: b for t, (_, b) in TEAMS.items()})
    meta["loadavg_start"] = load_start
    meta["wait_quiet"] = quiet
    meta["uncommitted_router_files"] = dirty_paths("workloads/router", "bench/router_faults.py", "bench/_faults_check.py",
                                                   "bench/_faults_stubs.py", "bench/_router_load.py")
    meta["router_package"] = router_package(PY)
    meta["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    meta["setup"] = ("router: `tierwise-router serve` (1 worker), Redis budgets (redis-server on loopback), "
                     "LEDGER_FSYNC=batch; 2 Tier-1 replicas + Bedrock Converse wire stub in one aiohttp process; "
                     "breaker 5 failures / 2 s reset; Bedrock max_attempts 4, backoff base 50 ms")
    doc = {"scenario": "router_faults", "metadata": meta,
           "targets": {"success_rate_min_where_tier2_healthy": 0.999, "budgets_exact": True, "ledger_exact": True},
           "results": results,
           "summary": {m: {"success_rate": r["success_rate"], "target_met": r["target_met"],
                           "p99_ms": r["latency_ok_ms"]["p99"], "fallbacks": sum(r["fallbacks_by_reason"].values()),
                           "budget_refused": r["budget_refused"], "budgets_exact": r["budgets"]["exact"],
                           "ledger_exact": r["ledger"]["exact"]} for m, r in results.items()}}
    out = REPO / "bench" / "results" / "router_faults" / f"{a.label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
