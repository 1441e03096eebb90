"""What cascade mode adds in latency: the real tiny vLLM (CPU) as Tier 1, a local Bedrock wire server
(the router tests' fake, answering at once) as Tier 2, the router in process.

    .venv-router/bin/python bench/routing_cascade.py [--label NAME] [--requests 30]

Per round (interleaved, same prompts): `auto` in triage mode routed to Tier 1; cascade mode kept
(min_confidence 0: logprobs requested, judged, stripped); cascade mode escalated (min_confidence 1:
Tier 1's first N tokens, then Tier 2); Tier 2 called directly. Non-streaming: total latency;
streaming: time to the first content byte at the client. Escalated − direct Tier 2 is what the
cascade adds to an escalated call; kept − triage is what it adds to a kept one. The machine is
shared (load average recorded); medians over rounds are reported beside the raw samples.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "workloads" / "router" / "tests"
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(TESTS))
from _meta import dirty_paths, metadata, write_result  # noqa: E402

PROMPTS = ["Write one sentence about the sea.", "Name three colours.", "What is 12 plus 30?",
           "Explain photosynthesis briefly.", "Give me a haiku about mountains."]


def _harness():
    spec = importlib.util.spec_from_file_location("tw_vllm_server", REPO / "workloads" / "router" / "harness" / "vllm_server.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return round(s[min(len(s) - 1, int(q * len(s)))], 2)


async def run(a, vllm_url: str) -> dict:
    from conftest import KEY_A, boto_session, make_config, serve
    from fakes import FakeBedrock

    from tierwise_router.app import create_app
    from tierwise_router.config import hash_api_key
    from tierwise_router.settings import Settings
    from tierwise_router.triage import load_triage

    fb = FakeBedrock()
    runner, burl = await serve(fb.app())
    triage = load_triage()
    modes = {
        "triage_tier1": ("triage", 1.0, "auto", {"target_tier2_share": 0.0}),
        "cascade_kept": ("cascade", 0.0, "auto", {}),
        "cascade_escalated": ("cascade", 1.0, "auto", {}),
        "tier2_direct": ("triage", 1.0, "claude", {}),
    }
    apps, clients = {}, {}
    tmp = Path(tempfile.mkdtemp())
    for name, (mode, conf, _, routing) in modes.items():
        cfg = make_config([vllm_url], burl, teams=[{"name": "team-a", "api_key_sha256": [hash_api_key(KEY_A)], "mode": mode}],
                          routing={"domain_adapters": {}, "cascade": {"min_confidence": conf, "tokens": a.tokens}, **routing})
        app = create_app(Settings(env="test", ledger_path=tmp / f"{name}.jsonl", scrape_interval_s=1.0), config=cfg,
                         boto_session=boto_session(), triage=triage)
        lc = app.router.lifespan_context(app)
        await lc.__aenter__()
        apps[name] = lc
        clients[name] = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://router.test", timeout=60,
                                          headers={"authorization": f"Bearer {KEY_A}"})
    samples: dict[str, dict[str, list[float]]] = {m: {"total_ms": [], "ttft_ms": []} for m in modes}
    routes: dict[str, set[str]] = {m: set() for m in modes}
    try:
        for i in range(a.requests + 2):  # two warm-up rounds
            prompt = PROMPTS[i % len(PROMPTS)]
            for name, (_, _, model, _) in modes.items():
                body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": a.max_tokens,
                        "temperature": 0}
                t0 = time.perf_counter()
                r = await clients[name].post("/v1/chat/completions", json=body)
                total = (time.perf_counter() - t0) * 1000
                r.raise_for_status()
                routes[name].add(r.headers.get("x-tierwise-route", "") + "|" + r.headers.get("x-tierwise-cascade", "-"))
                t0 = time.perf_counter()
                ttft = None
                async with clients[name].stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as s:
                    async for line in s.aiter_lines():
                        if ttft is None and line.startswith("data: {") and '"content"' in line:
                            ttft = (time.perf_counter() - t0) * 1000
                if i >= 2:
                    samples[name]["total_ms"].append(round(total, 2))
                    samples[name]["ttft_ms"].append(round(ttft if ttft is not None else float("nan"), 2))
    finally:
        for c in clients.values():
            await c.aclose()
        for lc in apps.values():
            await lc.__aexit__(None, None, None)
        triage.close()
        await runner.cleanup()
    summary = {m: {k: {"p50": pct(v, 0.5), "p90": pct(v, 0.9)} for k, v in s.items()} for m, s in samples.items()}
    added = {
        "kept_vs_triage_total_p50_ms": round(summary["cascade_kept"]["total_ms"]["p50"] - summary["triage_tier1"]["total_ms"]["p50"], 2),
        "kept_vs_triage_ttft_p50_ms": round(summary["cascade_kept"]["ttft_ms"]["p50"] - summary["triage_tier1"]["ttft_ms"]["p50"], 2),
        "escalated_vs_tier2_total_p50_ms": round(summary["cascade_escalated"]["total_ms"]["p50"] - summary["tier2_direct"]["total_ms"]["p50"], 2),
        "escalated_vs_tier2_ttft_p50_ms": round(summary["cascade_escalated"]["ttft_ms"]["p50"] - summary["tier2_direct"]["ttft_ms"]["p50"], 2),
    }
    return {"summary": summary, "added": added, "routes_seen": {m: sorted(r) for m, r in routes.items()}, "raw": samples}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", default="cascade-tiny-cpu")
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--tokens", type=int, default=8, help="routing.cascade.tokens (judged / buffered)")
    ap.add_argument("--max-tokens", type=int, default=32)
    a = ap.parse_args()
    h = _harness()
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as d:
        srv = h.TinyVllm(h.vllm_python(), Path(d) / "tiny")
        srv.start()
        try:
            out = asyncio.run(run(a, srv.base_url))
        finally:
            srv.stop()
    doc = {"scenario": "routing", "label": a.label,
           "metadata": {**metadata(a.label, requests=a.requests, tokens=a.tokens, max_tokens=a.max_tokens),
                        "load_avg_1m_before": round(load0, 2), "load_avg_1m_after": round(os.getloadavg()[0], 2),
                        "dirty_paths": dirty_paths("workloads/router", "bench/routing_cascade.py"),
                        "setup": "router in process (httpx ASGI transport), tiny vLLM on CPU (Tier 1), local Bedrock "
                                 "wire server (Tier 2, answers at once)"},
           **out}
    path = write_result("routing", a.label, doc)
    for m, s in out["summary"].items():
        print(f"{m:<20} total p50 {s['total_ms']['p50']:>8} ms  ttft p50 {s['ttft_ms']['p50']:>8} ms")
    print("added", out["added"])
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
