"""Dual cost report: token costs (router ledger) joined with GPU infrastructure costs.

Inputs
------
- **Router ledger**, read by `ledger_source.py` with the router's own format library
  (`tierwise_ledger`): from S3 (the durable store the router ships to) or local files; torn lines are
  counted and skipped, an entry stored twice is counted once. Fields used: ts, team, model, tier,
  prompt_tokens, completion_tokens, cost_nano_usd.
- **GPU usage samples** (`gpu-usage/v1`, JSON lines, one per GPU node per sampling period; produced
  by `tierwise report snapshot` from `kubectl get -o json`, or any recorder):
  `{"schema": "gpu-usage/v1", "ts": "2026-01-05T10:00:00Z", "interval_s": 300, "node": "ip-…",
    "instance_type": "g6.12xlarge", "capacity_type": "spot", "region": "us-west-2", "node_gpus": 4,
    "usd_per_hour": 1.65,            # optional: the price actually paid (spot); else price book
    "pods": [{"namespace": "tierwise", "pod": "vllm-llama-8b-0", "team": "shared",
              "model": "llama-8b", "gpus": 1.0}]}`
  A MIG slice counts as its fraction of a GPU (3g.20gb = 3/7).
- **Price book**: `prices.json` with `ec2_on_demand.regions.<region>.<instance type>` USD/hour
  (the repo's `policies/prices/prices.json`).

Attribution (per sample: node cost = USD/hour × interval)
----------------------------------------------------------
- a pod owned by a team (namespace/pod label `tierwise.io/team`) → that team, by its GPU share;
- a shared model-server pod (team `shared`, label `tierwise.io/model`) → split across teams by their
  share of that model's tokens in the ledger over the report period; with no traffic at all, it is
  `shared_unused` (paid-for serving nobody used);
- GPUs on the node that no pod requested → `idle` (the waste GpuIdleWaste alerts on).

Totals: **spend** = Bedrock token cost (real money) + GPU cost. Tier-1 token cost in the ledger is
the router's amortised internal price — shown as *chargeback* next to the GPU cost it should recover,
never added to spend (that would count the GPUs twice).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tierwise_ledger import LedgerRead

NANO = 1_000_000_000
SHARED = "shared"


class InputError(ValueError):
    """Bad input, with the file and line that caused it."""


@dataclass(frozen=True)
class PriceBook:
    on_demand: dict[tuple[str, str], float]  # (region, instance type) -> USD/hour
    source: str = ""

    def usd_per_hour(self, region: str, instance_type: str) -> float | None:
        return self.on_demand.get((region, instance_type))


def default_prices_path() -> Path | None:
    if os.environ.get("TIERWISE_REPORT_PRICES"):
        return Path(os.environ["TIERWISE_REPORT_PRICES"])
    from .environment import repo_root

    root = repo_root() or repo_root(Path.cwd())
    p = root / "policies" / "prices" / "prices.json" if root else None
    return p if p and p.exists() else None


def load_prices(path: Path | None) -> PriceBook:
    path = path or default_prices_path()
    if path is None:
        return PriceBook({}, "none (pass --prices, or record usd_per_hour in the samples)")
    try:
        d = json.loads(Path(path).read_text())
        regions = d["ec2_on_demand"]["regions"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path}: not a price book with ec2_on_demand.regions ({e})") from None
    book = {(r, t): float(p) for r, types in regions.items() for t, p in types.items()}
    return PriceBook(book, f"{path} (as of {d['ec2_on_demand'].get('as_of', '?')})")


def _ts(s: Any, where: str) -> dt.datetime:
    if not isinstance(s, str):
        raise InputError(f"{where}: ts must be an ISO 8601 string")
    try:
        t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{where}: bad ts {s!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def read_usage(path: Path) -> list[tuple[str, dict[str, Any]]]:
    out = []
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise InputError(f"{path}: {e.strerror}") from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{i}"
        try:
            rec = json.loads(line)
        except ValueError as e:
            raise InputError(f"{where}: not JSON ({e})") from None
        if rec.get("schema") != "gpu-usage/v1":
            raise InputError(f"{where}: schema must be 'gpu-usage/v1', got {rec.get('schema')!r}")
        for k in ("ts", "interval_s", "node", "instance_type", "region", "node_gpus", "pods"):
            if k not in rec:
                raise InputError(f"{where}: missing {k!r}")
        out.append((where, rec))
    return out


def build_report(ledger: LedgerRead, usage_files: Iterable[Path], prices: PriceBook,
                 since: dt.datetime, until: dt.datetime, *, ledger_source: str = "") -> dict[str, Any]:
    # ---- tokens
    teams: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    models: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    tokens_by_model_team: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    days: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))  # timeline buckets
    hourly = until - since <= dt.timedelta(hours=48)

    def bucket(t: dt.datetime) -> str:
        t = t.astimezone(dt.UTC)
        return t.strftime("%Y-%m-%dT%H:00Z") if hourly else t.date().isoformat()
    n_entries = 0
    for e in ledger.entries:
        t = _ts(e.get("ts"), f"ledger entry {e.get('entry_id') or e.get('request_id')}")
        if not since <= t < until:
            continue
        n_entries += 1
        usd = e["cost_nano_usd"] / NANO
        toks = e["prompt_tokens"] + e["completion_tokens"]
        tm, md = teams[e["team"]], models[e["model"]]
        key = "bedrock_usd" if int(e["tier"]) == 2 else "tier1_chargeback_usd"
        tm[key] += usd
        tm["calls"] += 1
        tm["prompt_tokens"] += e["prompt_tokens"]
        tm["completion_tokens"] += e["completion_tokens"]
        md["tier"] = int(e["tier"])
        md["calls"] += 1
        md["tokens"] += toks
        md["token_usd"] += usd
        tokens_by_model_team[e["model"]][e["team"]] += toks
        if key == "bedrock_usd":
            days[bucket(t)]["bedrock_usd"] += usd

    # ---- GPUs
    idle = {"gpu_hours": 0.0, "gpu_usd": 0.0}
    shared_unused: dict[str, float] = defaultdict(float)
    notes: set[str] = set()
    n_samples = 0
    for uf in usage_files:
        for where, rec in read_usage(Path(uf)):
            t = _ts(rec["ts"], where)
            if not since <= t < until:
                continue
            n_samples += 1
            hours = float(rec["interval_s"]) / 3600
            rate = rec.get("usd_per_hour")
            if rate is None:
                rate = prices.usd_per_hour(rec["region"], rec["instance_type"])
                if rate is None:
                    raise InputError(f"{where}: no price for {rec['instance_type']} in {rec['region']} "
                                     f"(price book: {prices.source}); record usd_per_hour or extend the book")
                if rec.get("capacity_type") == "spot":
                    notes.add("spot nodes without usd_per_hour are priced at on-demand (an upper bound)")
            node_gpus = float(rec["node_gpus"])
            if node_gpus <= 0:
                raise InputError(f"{where}: node_gpus must be > 0")
            per_gpu_usd = float(rate) * hours / node_gpus
            used = 0.0
            day = days[bucket(t)]
            for p in rec["pods"]:
                g = float(p["gpus"])
                used += g
                usd, gh = g * per_gpu_usd, g * hours
                team, model = p.get("team") or SHARED, p.get("model")
                if model:
                    models[model]["gpu_hours"] += gh
                    models[model]["gpu_usd"] += usd
                if team != SHARED:
                    teams[team]["gpu_usd"] += usd
                    teams[team]["gpu_hours"] += gh
                    day["gpu_usd"] += usd
                elif model:
                    shared_unused[model] += usd  # apportioned after all samples are read
                    day["gpu_usd"] += usd
                else:
                    raise InputError(f"{where}: pod {p.get('pod')!r} is shared but names no model")
            if used > node_gpus + 1e-9:
                raise InputError(f"{where}: pods request {used} GPUs on a {node_gpus:g}-GPU node")
            idle["gpu_hours"] += (node_gpus - used) * hours
            idle["gpu_usd"] += (node_gpus - used) * per_gpu_usd
            day["idle_usd"] += (node_gpus - used) * per_gpu_usd

    # ---- shared model servers → teams by token share of that model
    unused_total = 0.0
    for model, usd in shared_unused.items():
        share = tokens_by_model_team.get(model)
        total = sum(share.values()) if share else 0
        if not total:
            unused_total += usd
            continue
        gh = models[model]["gpu_hours"] * usd / models[model]["gpu_usd"] if models[model]["gpu_usd"] else 0
        for team, toks in share.items():
            teams[team]["gpu_usd"] += usd * toks / total
            teams[team]["gpu_hours"] += gh * toks / total

    team_rows = []
    for name in sorted(teams):
        t = teams[name]
        row = {"team": name, "calls": int(t["calls"]), "prompt_tokens": int(t["prompt_tokens"]),
               "completion_tokens": int(t["completion_tokens"]),
               "bedrock_usd": t["bedrock_usd"], "tier1_chargeback_usd": t["tier1_chargeback_usd"],
               "token_usd": t["bedrock_usd"] + t["tier1_chargeback_usd"],
               "gpu_hours": t["gpu_hours"], "gpu_usd": t["gpu_usd"], "spend_usd": t["bedrock_usd"] + t["gpu_usd"]}
        team_rows.append(row)
    model_rows = [{"model": m, "tier": int(v.get("tier", 1)), "calls": int(v["calls"]), "tokens": int(v["tokens"]),
                   "token_usd": v["token_usd"], "gpu_hours": v["gpu_hours"], "gpu_usd": v["gpu_usd"]}
                  for m, v in sorted(models.items())]
    bedrock = sum(r["bedrock_usd"] for r in team_rows)
    gpu_alloc = sum(r["gpu_usd"] for r in team_rows)
    totals = {"bedrock_usd": bedrock, "gpu_allocated_usd": gpu_alloc, "gpu_idle_usd": idle["gpu_usd"],
              "gpu_shared_unused_usd": unused_total,
              "gpu_usd": gpu_alloc + idle["gpu_usd"] + unused_total,
              "tier1_chargeback_usd": sum(r["tier1_chargeback_usd"] for r in team_rows)}
    totals["spend_usd"] = totals["bedrock_usd"] + totals["gpu_usd"]
    totals["chargeback_recovery_ratio"] = (totals["tier1_chargeback_usd"] / totals["gpu_usd"]) if totals["gpu_usd"] else None
    return {
        "schema": "tierwise-cost-report/v1", "currency": "USD",
        "period": {"since": since.isoformat(), "until": until.isoformat()},
        "teams": team_rows, "models": model_rows,
        "idle": idle, "shared_unused_usd": unused_total, "totals": totals,
        "timeline_granularity": "hour" if hourly else "day",
        "timeline": [{"bucket": d, "bedrock_usd": v["bedrock_usd"], "gpu_usd": v["gpu_usd"], "idle_usd": v["idle_usd"]}
                     for d, v in sorted(days.items())],
        "inputs": {"ledger_source": ledger_source, "ledger_segments": ledger.segments, "ledger_entries": n_entries,
                   "ledger_skipped_corrupt_lines": ledger.corrupt_lines, "ledger_duplicates_dropped": ledger.duplicates,
                   "gpu_samples": n_samples,
                   "prices": prices.source, "notes": sorted(notes)},
    }
