"""What the streamed-output guardrails cost (workloads/router/tierwise_router/stream_guard.py): the real
guardrails service (its own venv, loopback) and a scripted vLLM-shaped upstream that answers at once (the
router tests' gateway stub), the router in process behind uvicorn on loopback (real streaming).

    .venv-router/bin/python bench/stream_guard.py [--label NAME] [--rounds 20]

Per round, interleaved, the same streamed answer (6 sentences, ~330 characters in 4-character deltas, one
sentence carrying a card number) through the router:
- ``off``: no guardrails configured;
- ``input_only``: guardrails on, streamed output not checked (``stream_window_chars`` cannot turn it off,
  so this mode wraps the same app with output checks disabled — see ``_input_only``) — the pair that
  isolates what the output check adds;
- ``on``: input check + one output check per sentence (what ships).
Metrics: time to the first content byte at the client and total stream time (ms), output checks per
answer, and the guardrails service's own latency for one sentence (``POST /v1/check`` direct), the
per-stage number beside the end-to-end one. The machine is shared: load average recorded, medians over
rounds reported beside the raw samples.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
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

ANSWER = ("Thanks for asking about your account. The last payment went through on Monday. "
          "Your card number on file is 4111 1111 1111 1111. Statements are issued at the end of each month. "
          "You can change the billing address in settings. Let me know if anything else comes up.")


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return round(s[min(len(s) - 1, int(q * len(s)))], 2)


def summary(xs: list[float]) -> dict:
    return {"median": round(statistics.median(xs), 2), "p90": pct(xs, 0.9), "min": round(min(xs), 2),
            "max": round(max(xs), 2)}


async def one(c: httpx.AsyncClient) -> tuple[float, float, str]:
    t0 = time.perf_counter()
    ttft = None
    text = ""
    async with c.stream("POST", "/v1/chat/completions", json={"model": "tiny", "stream": True, "messages": [
            {"role": "user", "content": "What do you have on file for my account?"}]}) as r:
        assert r.status_code == 200, await r.aread()
        async for line in r.aiter_lines():
            if not line.startswith("data: {"):
                continue
            for ch in json.loads(line[6:]).get("choices") or []:
                piece = (ch.get("delta") or {}).get("content") or ""
                if piece and ttft is None:
                    ttft = time.perf_counter() - t0
                text += piece
    return (ttft or 0.0) * 1000, (time.perf_counter() - t0) * 1000, text


async def run(a, gr_url: str) -> dict:
    import uvicorn
    from conftest import KEY_A, boto_session, free_port, make_config, serve
    from gateway_stub import StubGateway

    from tierwise_router.app import create_app
    from tierwise_router.settings import Settings
    from tierwise_router.triage import load_triage

    up = StubGateway(model=None, text=ANSWER, delta_chars=4)
    runner, url = await serve(up.app())
    triage = load_triage(REPO / "workloads" / "router" / "tierwise_router" / "triage_model.json")
    tmp = Path(tempfile.mkdtemp())
    hooks = {"off": {}, "input_only": {"guardrails_url": gr_url}, "on": {"guardrails_url": gr_url}}
    servers, tasks, clients = {}, {}, {}
    for name, h in hooks.items():
        # a real HTTP server: httpx's ASGITransport buffers a whole streamed body, which hides the first byte
        app = create_app(Settings(env="test", ledger_path=tmp / f"{name}.jsonl", scrape_interval_s=1.0),
                         config=make_config([url], hooks=h), boto_session=boto_session(), triage=triage)
        port = free_port()
        srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                            http="httptools"))
        tasks[name] = asyncio.create_task(srv.serve())
        while not srv.started:
            await asyncio.sleep(0.05)
        if name == "input_only":
            _input_only(app)
        servers[name] = srv
        clients[name] = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60,
                                          headers={"authorization": f"Bearer {KEY_A}"})
    samples = {m: {"ttft_ms": [], "total_ms": []} for m in hooks}
    texts = {}
    async with httpx.AsyncClient(timeout=30) as direct:
        sentence = "Your card number on file is 4111 1111 1111 1111. "
        check_ms = []
        for i in range(a.warmup + a.rounds):
            for m in hooks:
                ttft, total, text = await one(clients[m])
                texts[m] = text
                if i >= a.warmup:
                    samples[m]["ttft_ms"].append(round(ttft, 3))
                    samples[m]["total_ms"].append(round(total, 3))
            t0 = time.perf_counter()
            r = await direct.post(gr_url + "/v1/check", json={"direction": "output", "team": "team-a",
                                                              "text": sentence})
            if i >= a.warmup:
                check_ms.append(round((time.perf_counter() - t0) * 1000, 3))
            assert r.status_code == 200
    for m in hooks:
        await clients[m].aclose()
        servers[m].should_exit = True
        await tasks[m]
    await runner.cleanup()
    units = sum(1 for _ in __import__("re").finditer(r"[.!?;:][\"')\]]*\s", ANSWER + " "))
    res = {m: {"ttft_ms": summary(s["ttft_ms"]), "total_ms": summary(s["total_ms"]), "raw": s} for m, s in samples.items()}
    return {
        "modes": res,
        "output_checks_per_answer": units,
        "guardrails_check_one_sentence_ms": {**summary(check_ms), "raw": check_ms},
        "added_by_output_check_ms": {
            "ttft_median": round(res["on"]["ttft_ms"]["median"] - res["input_only"]["ttft_ms"]["median"], 2),
            "total_median": round(res["on"]["total_ms"]["median"] - res["input_only"]["total_ms"]["median"], 2)},
        "card_redacted": "4111" not in texts["on"] and "4111" in texts["input_only"],
        "answer_chars": len(ANSWER),
    }


def _input_only(app) -> None:
    """Same app, output checks off: the router state's guardrails hook is kept for the input direction
    only (the ``_guard_out`` wrapper sees no guardrails URL when the stream starts)."""
    st = app.state.router
    cfg = st.config
    real_hooks = cfg.hooks
    no_out = real_hooks.model_copy(update={"guardrails_url": None})
    import tierwise_router.chat as chat

    orig = chat.CallCtx._guard_out

    def guard_out(self, frames):
        if self.st is st:
            self.st.config = cfg.model_copy(update={"hooks": no_out})
            try:
                return orig(self, frames)
            finally:
                self.st.config = cfg
        return orig(self, frames)

    chat.CallCtx._guard_out = guard_out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", default="loopback-2core")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    a = ap.parse_args()
    from real_guardrails import GuardrailsServer

    load0 = os.getloadavg()
    with GuardrailsServer(Path(tempfile.mkdtemp(prefix="tw-gr-"))) as gr:
        out = asyncio.run(run(a, gr))
    out["meta"] = metadata(a.label, rounds=a.rounds, warmup=a.warmup, deltas_chars=4,
                           dirty=dirty_paths("workloads/router", "workloads/guardrails"))
    out["meta"]["loadavg_start"] = [round(x, 2) for x in load0]
    out["meta"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    p = write_result("stream_guard", a.label, out)
    print(p)
    print(json.dumps({k: v for k, v in out.items() if k != "modes"} | {
        m: {"ttft_median": r["ttft_ms"]["median"], "total_median": r["total_ms"]["median"]}
        for m, r in out["modes"].items()}, indent=1, default=str)[:3000])


if __name__ == "__main__":
    main()
