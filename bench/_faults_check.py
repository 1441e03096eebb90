"""What bench/router_faults.py checks after each fault mix: the budget counters in Redis against the
ledger (no leaked reservation, no overrun, reservations made == settled + released), the ledger against
the responses (every 200 recorded exactly once, nothing for a failure), and the success rate, refusals,
fallbacks and latency percentiles that go into the mix's JSON."""

from __future__ import annotations

import collections
import datetime as dt
import statistics

from _router_load import pct


def redis_state(url: str, teams: list[str]) -> dict:
    import redis

    from tierwise_router.budgets import period_keys

    r = redis.Redis.from_url(url, decode_responses=True)
    now = dt.datetime.now(dt.UTC)
    state = {}
    for t in teams:
        tk, uk = period_keys(t, now)
        v = r.mget(tk, uk)
        state[t] = {"tokens": int(v[0] or 0), "nano": int(v[1] or 0)}
    cs = r.info("commandstats")
    cmd = {k.removeprefix("cmdstat_"): {"calls": v.get("calls", 0), "failed": v.get("failed_calls", 0),
                                        "rejected": v.get("rejected_calls", 0)}
           for k, v in cs.items() if k.removeprefix("cmdstat_") in ("evalsha", "eval", "multi", "exec", "incrby")}
    r.close()
    return {"teams": state, "commands": cmd}


def evaluate(faults: dict, recs: list[dict], wall: float, counters: dict, stub_stats: dict, rs: dict,
             entries: list[dict], bad_lines: int, load0: list[float], *, teams: dict,
             tier2_healthy: bool) -> dict:
    """One mix's result: status counts, refusals, fallbacks, latency percentiles, and the two exact checks
    (``budgets``, ``ledger``) described in router_faults.py. ``teams``: name → (key, budgets)."""
    from decimal import Decimal

    n = len(recs)
    by_status = collections.Counter(str(r["status"]) for r in recs)
    refused = [r for r in recs if r["status"] == 429 and str(r.get("code", "")).startswith("budget_")]
    refused_by = collections.Counter(f"{r['team']}:{r['code']}" for r in refused)
    ok = [r for r in recs if r["status"] == 200 and r.get("valid")]
    considered = n - len(refused)
    failures = collections.Counter(f"{r['status']}:{r.get('code')}" for r in recs
                                   if r not in ok and r not in refused) if n < 200_000 else {}
    lat_ok = [r["latency_ms"] for r in ok]
    lat_all = [r["latency_ms"] for r in recs]
    fb = collections.Counter(r["fallback"] for r in ok if r.get("fallback"))

    # Ledger vs responses: every 200 recorded exactly once, nothing recorded for a failed request.
    ids = [e["request_id"] for e in entries]
    dup = [k for k, c in collections.Counter(ids).items() if c > 1]
    ok_ids = {r["rid"] for r in ok}
    ledger_ids = set(ids)
    ledger = {"entries": len(entries), "corrupt_lines": bad_lines, "responses_200": len(ok_ids),
              "duplicates": len(dup), "ok_without_entry": len(ok_ids - ledger_ids),
              "entry_without_ok": len(ledger_ids - ok_ids),
              "request_id_echoed": all(r.get("rid_echo") == r["rid"] for r in recs if r["status"] != "exc")}
    ledger["exact"] = (ledger["duplicates"] == 0 and ledger["ok_without_entry"] == 0 and
                       ledger["entry_without_ok"] == 0 and bad_lines == 0)

    # Budgets: Redis counters == Σ ledger per team (no leaked reservation), ≤ limit (no overrun).
    per_team: dict[str, dict] = {}
    for t in teams:
        es = [e for e in entries if e["team"] == t]
        led_tokens = sum(e["prompt_tokens"] + e["completion_tokens"] for e in es)
        led_nano = sum(e["cost_nano_usd"] for e in es)
        b = teams[t][1]
        lim_t = b.get("tokens_per_day")
        lim_n = int(Decimal(b["usd_per_month"]) * 10**9) if "usd_per_month" in b else None
        red = rs["teams"][t]
        per_team[t] = {"redis_tokens": red["tokens"], "ledger_tokens": led_tokens, "redis_nano_usd": red["nano"],
                       "ledger_nano_usd": led_nano, "tokens_limit": lim_t, "nano_usd_limit": lim_n,
                       "leak_tokens": red["tokens"] - led_tokens, "leak_nano_usd": red["nano"] - led_nano,
                       "overrun": bool((lim_t is not None and red["tokens"] > lim_t) or
                                       (lim_n is not None and red["nano"] > lim_n)),
                       "refused": sum(c for k, c in refused_by.items() if k.startswith(t + ":"))}
    cmd = rs["commands"]
    reserve_calls = sum(cmd.get(k, {}).get("calls", 0) - cmd.get(k, {}).get("failed", 0) -
                        cmd.get(k, {}).get("rejected", 0) for k in ("evalsha", "eval"))
    budget_rejections = int(sum(v for k, v in counters.items()
                                if k.startswith("tierwise_router_rejections_total")
                                and ('reason="tokens_per_day"' in k or 'reason="usd_per_month"' in k)))
    settles = cmd.get("multi", {}).get("calls", 0)
    budgets = {"per_team": per_team, "reserve_script_calls": reserve_calls, "budget_refusals_router": budget_rejections,
               "reservations_made": reserve_calls - budget_rejections, "settlements_and_releases": settles,
               "redis_commands": cmd}
    budgets["exact"] = (all(v["leak_tokens"] == 0 and v["leak_nano_usd"] == 0 and not v["overrun"]
                            for v in per_team.values()) and budgets["reservations_made"] == settles)
    wrong_refusals = sum(v["refused"] for t, v in per_team.items() if not t.startswith("tight"))
    rate = len(ok) / considered if considered else 0.0
    res = {
        "faults": faults, "tier2_healthy": tier2_healthy, "requests": n, "wall_s": round(wall, 2),
        "throughput_rps": round(n / wall, 1), "loadavg_before": load0,
        "status_counts": dict(by_status), "ok": len(ok), "budget_refused": len(refused),
        "budget_refused_by": dict(refused_by), "refused_with_room": wrong_refusals,
        "success_rate": round(rate, 5), "failures": dict(failures),
        "fallbacks_by_reason": dict(fb), "fallback_share": round(sum(fb.values()) / len(ok), 4) if ok else None,
        "tier2_share": round(sum(1 for r in ok if r.get("tier") == "2") / len(ok), 4) if ok else None,
        "latency_ok_ms": {"p50": _r(pct(lat_ok, 50)), "p99": _r(pct(lat_ok, 99)), "p999": _r(pct(lat_ok, 99.9)),
                          "max": _r(max(lat_ok) if lat_ok else None),
                          "mean": _r(statistics.fmean(lat_ok) if lat_ok else None)},
        "latency_all_ms": {"p50": _r(pct(lat_all, 50)), "p99": _r(pct(lat_all, 99))},
        "error_envelopes_valid": all(r.get("valid") for r in recs if r["status"] not in (200, "exc")),
        "stub_faults_served": stub_stats, "router_counters": counters, "budgets": budgets, "ledger": ledger,
    }
    res["target_met"] = (rate >= 0.999 if res["tier2_healthy"] else None)
    return res


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)
