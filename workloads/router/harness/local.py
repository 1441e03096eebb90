"""`make local`: tiny vLLM + the router on loopback, one request through model `auto` with the openai
client, print the route and the cost, shut everything down.

    .venv-router/bin/python workloads/router/harness/local.py

Needs .venv-router (router + openai) and .venv-vllm (make vllm-env; or TIERWISE_VLLM_PYTHON).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from vllm_server import TinyVllm, free_port, vllm_python  # noqa: E402

KEY = "sk-local-demo"


def main() -> int:
    import openai

    tmp = Path(tempfile.mkdtemp(prefix="tw-local-"))
    print(f"building the tiny model and starting vLLM ({vllm_python()}) ...", flush=True)
    with TinyVllm(model_dir=tmp / "model") as vllm:
        cfg = {"teams": [{"name": "local", "api_key_sha256": [hashlib.sha256(KEY.encode()).hexdigest()]}],
               "models": [{"name": "tiny", "kind": "vllm", "served_model_name": vllm.model,
                           "endpoints": [vllm.base_url], "adapters": list(vllm.adapters),
                           "price": {"gpu_hour_usd": "1.20", "tokens_per_s": 1500}}],
               "routing": {"tier1_model": "tiny", "domain_adapters": {"math": "billing", "stem": "support"}}}
        (tmp / "router.json").write_text(json.dumps(cfg))
        port = free_port()
        env = os.environ | {"TIERWISE_ROUTER_CONFIG_PATH": str(tmp / "router.json"), "TIERWISE_ROUTER_ENV": "dev",
                            "TIERWISE_ROUTER_LEDGER_PATH": str(tmp / "ledger.jsonl")}
        router = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "tierwise_router.app:create_app",
                                   "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
                                   "--log-level", "warning"], env=env, start_new_session=True,
                                  stderr=open(tmp / "router.log", "wb"))
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            oc = openai.OpenAI(api_key=KEY, base_url=f"http://127.0.0.1:{port}/v1")
            q = "A store sells 3 pens for 2 dollars. How much do 12 pens cost?"
            raw = oc.chat.completions.with_raw_response.create(model="auto", max_tokens=16, temperature=0,
                                                               messages=[{"role": "user", "content": q}])
            r = raw.parse()
            print(json.dumps({"route": raw.headers["x-tierwise-route"], "served_by": r.model,
                              "triage_score": raw.headers.get("x-tierwise-triage-score"),
                              "prompt_tokens": r.usage.prompt_tokens, "completion_tokens": r.usage.completion_tokens,
                              "cost_usd": raw.headers["x-tierwise-cost-usd"],
                              "reply": r.choices[0].message.content}, indent=2))
        finally:
            os.killpg(router.pid, signal.SIGTERM)
            router.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
