"""The upstream stubs of bench/router_faults.py, in one process: two Tier-1 replicas (OpenAI/vLLM shape)
and a Bedrock Converse wire stub, each fault drawn per request from a seeded RNG, plus a control endpoint
(``POST /_faults`` sets the rates and reseeds, ``GET`` returns them with what was served).

    python _faults_stubs.py T1A_PORT T1B_PORT T2_PORT CONTROL_PORT SEED ROUTER_TESTS_DIR
"""

import asyncio, json, random, sys
from aiohttp import web
sys.path.insert(0, sys.argv[6])
from fakes import reset_mid_response, throttled  # the router tests' fault helpers (tests/fakes.py)

faults = {"t1_5xx": 0.0, "t1_hang": 0.0, "t1_reset": 0.0, "t2_throttle": 0.0, "hang_s": 3.0}
stats = {}
rng = random.Random(int(sys.argv[5]))

def bump(k):
    stats[k] = stats.get(k, 0) + 1

def roll(*names):
    """One draw per request: which fault (if any) this request gets."""
    x = rng.random()
    for n in names:
        if x < faults[n]:
            return n
        x -= faults[n]
    return None

async def control(request):
    if request.method == "POST":
        faults.update(await request.json())
        stats.clear()
        rng.seed(faults.pop("seed", 1))
    return web.json_response({"faults": faults, "stats": stats})

async def chat(request):
    body = await request.json()
    f = roll("t1_5xx", "t1_hang", "t1_reset")
    bump(f or "t1_ok")
    if f == "t1_5xx":
        return web.json_response({"error": {"message": "stub overloaded", "type": "internal_error"}}, status=503)
    if f == "t1_hang":
        await asyncio.sleep(faults["hang_s"])
    ct = int(body.get("max_tokens") or 8)
    out = json.dumps({"id": "chatcmpl-stub", "object": "chat.completion", "created": 1, "model": body["model"],
                      "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok " * ct},
                                   "finish_reason": "stop"}],
                      "usage": {"prompt_tokens": 12, "completion_tokens": ct, "total_tokens": 12 + ct}}).encode()
    if f == "t1_reset":
        return await reset_mid_response(request, out)
    return web.Response(body=out, content_type="application/json")

async def converse(request):
    body = await request.json()
    if roll("t2_throttle"):
        bump("t2_throttle")
        return throttled()
    bump("t2_ok")
    mt = (body.get("inferenceConfig") or {}).get("maxTokens", 8)
    return web.json_response({"output": {"message": {"role": "assistant", "content": [{"text": "ok " * mt}]}},
                              "stopReason": "end_turn",
                              "usage": {"inputTokens": 11, "outputTokens": mt, "totalTokens": 11 + mt},
                              "metrics": {"latencyMs": 1}})

async def metrics(request):
    return web.Response(text="vllm:num_requests_waiting 0\nvllm:num_requests_running 0\n")

async def main():
    runners = []
    for port, kind in ((int(sys.argv[1]), "t1"), (int(sys.argv[2]), "t1"), (int(sys.argv[3]), "t2"),
                       (int(sys.argv[4]), "control")):
        a = web.Application()
        if kind == "t1":
            a.router.add_post("/v1/chat/completions", chat)
            a.router.add_get("/metrics", metrics)
            a.router.add_get("/health", lambda r: web.Response(text="ok"))
        elif kind == "t2":
            a.router.add_post("/model/{model_id}/converse", converse)
        else:
            a.router.add_route("*", "/_faults", control)
        r = web.AppRunner(a, access_log=None)
        await r.setup()
        await web.TCPSite(r, "127.0.0.1", port, backlog=1024).start()
        runners.append(r)
    await asyncio.Event().wait()

try:
    import uvloop
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
