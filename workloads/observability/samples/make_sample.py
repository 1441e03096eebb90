"""Regenerate the committed sample inputs of the cost report (fixed seed, no network).

    .venv-observability/bin/python workloads/observability/samples/make_sample.py

- `ledger.jsonl`: 24 h of router ledger entries (the router's exact line format, CRC32 + compact
  JSON) for the prod teams: Tier 1 mistral-24b / qwen-1-5b at their amortised prices, Tier 2 Claude
  Sonnet on Bedrock for long-context agent calls; plus one torn line, as a crash would leave.
- `gpu-usage.jsonl`: hourly gpu-usage/v1 samples of three GPU nodes: a p4de (MIG slices for
  mistral-24b, a research fine-tuning job in office hours), a spot g6.12xlarge with qwen-1-5b, and a
  second g6.12xlarge Karpenter adds for the day peak and consolidates two hours after it empties.
- `prices.json`: the subset of the repo price book these nodes need (same shape).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from pathlib import Path

from tierwise_ledger import encode_line

HERE = Path(__file__).resolve().parent
DAY = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
PRICES = {"mistral-24b": (0.30, 0.30), "qwen-1-5b": (0.04, 0.04),
          "anthropic.claude-sonnet-4-20250514-v1:0": (3.0, 15.0)}


def line(entry: dict) -> str:
    return encode_line(entry).decode()  # the router's own encoder


def ledger(rng: random.Random) -> str:
    out = []
    teams = [("assistants", 0.5), ("billing", 0.3), ("research", 0.2)]
    for i in range(420):
        # more traffic in the day (08-20 UTC)
        hour = rng.choices(range(24), weights=[1 if h < 8 or h >= 20 else 4 for h in range(24)])[0]
        ts = DAY + dt.timedelta(hours=hour, seconds=rng.randrange(3600))
        team = rng.choices([t for t, _ in teams], weights=[w for _, w in teams])[0]
        r = rng.random()
        if r < 0.55:
            model, tier, pt, ct = "mistral-24b", 1, rng.randint(2_000, 30_000), rng.randint(100, 1_500)
        elif r < 0.78:
            model, tier, pt, ct = "qwen-1-5b", 1, rng.randint(500, 8_000), rng.randint(20, 400)
        else:
            model, tier = "anthropic.claude-sonnet-4-20250514-v1:0", 2
            pt, ct = rng.randint(40_000, 180_000), rng.randint(500, 4_000)
        pin, pout = PRICES[model]
        nano = math.ceil(pt * pin * 1000 + ct * pout * 1000)
        out.append((ts, {"ts": ts.isoformat(), "request_id": "%016x" % rng.getrandbits(64), "team": team,
                         "model": model, "adapter": None, "tier": tier, "prompt_tokens": pt,
                         "completion_tokens": ct, "cost_nano_usd": nano, "usage_known": True, "status": "ok",
                         "fallback": "saturated" if tier == 2 and rng.random() < 0.1 else None}))
    out.sort(key=lambda x: x[0])
    text = "".join(line(e) for _, e in out)
    return text + line(out[-1][1])[:57]  # torn tail: a crash mid-write (no newline, bad checksum)


def usage() -> str:
    recs = []
    mig = 3 / 7
    for h in range(24):
        ts = (DAY + dt.timedelta(hours=h)).isoformat().replace("+00:00", "Z")
        pods = [{"namespace": "tierwise", "pod": f"vllm-mistral-24b-{i}", "team": "shared", "model": "mistral-24b",
                 "gpus": mig} for i in range(10 if 8 <= h < 20 else 6)]
        if 9 <= h < 17:
            pods.append({"namespace": "research", "pod": "finetune-sql-adapter", "team": "research", "gpus": 2.0})
        recs.append({"schema": "gpu-usage/v1", "ts": ts, "interval_s": 3600, "node": "ip-10-50-12-31",
                     "instance_type": "p4de.24xlarge", "capacity_type": "on-demand", "region": "us-east-1",
                     "node_gpus": 8, "pods": pods})
        recs.append({"schema": "gpu-usage/v1", "ts": ts, "interval_s": 3600, "node": "ip-10-50-40-8",
                     "instance_type": "g6.12xlarge", "capacity_type": "spot", "region": "us-east-1", "node_gpus": 4,
                     "usd_per_hour": 2.0712,
                     "pods": [{"namespace": "tierwise", "pod": f"vllm-qwen-1-5b-{i}", "team": "shared",
                               "model": "qwen-1-5b", "gpus": 1.0} for i in range(2)]})
        if 8 <= h < 20:
            busy = h < 18
            recs.append({"schema": "gpu-usage/v1", "ts": ts, "interval_s": 3600, "node": "ip-10-50-41-77",
                         "instance_type": "g6.12xlarge", "capacity_type": "on-demand", "region": "us-east-1",
                         "node_gpus": 4,
                         "pods": [{"namespace": "tierwise", "pod": f"vllm-qwen-1-5b-{i}", "team": "shared",
                                   "model": "qwen-1-5b", "gpus": 1.0} for i in (2, 3)] if busy else []})
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in recs)


def main() -> None:
    rng = random.Random(20260105)
    (HERE / "ledger.jsonl").write_text(ledger(rng))
    (HERE / "gpu-usage.jsonl").write_text(usage())
    prices = {"version": "sample", "currency": "USD",
              "ec2_on_demand": {"as_of": "2025-07-01", "unit": "USD per instance-hour",
                                "regions": {"us-east-1": {"g6.12xlarge": 4.6016, "p4de.24xlarge": 27.45}}}}
    (HERE / "prices.json").write_text(json.dumps(prices, indent=2) + "\n")


if __name__ == "__main__":
    main()
