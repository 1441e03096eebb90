"""Test helpers for agent tests (shared through the package: pytest's importlib mode forbids importing
conftest). Loopback only: free ports, a polling wait, subprocess groups, stdlib stub HTTP upstreams that
count calls, and the path of a sibling service's virtualenv."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

#: The repository root, found from the test tree (an editable install's location is not the repo's).
#: The repository root (workloads/agents/tierwise_agents/testing.py -> three levels up); editable installs keep the path.
REPO = Path(__file__).resolve().parents[3]



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred: Callable[[], Any], timeout_s: float = 60, what: str = "condition", proc: subprocess.Popen | None = None):
    """Poll `pred` until it returns a truthy value (events, not fixed sleeps); fail with `what` on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: process exited with {proc.returncode}")
        try:
            v = pred()
            if v:
                return v
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1) as r:
        return r.status == 200


def service_python(name: str, env_var: str) -> Path:
    import pytest

    exe = Path(os.environ.get(env_var, REPO / f".venv-{name}" / "bin" / "python"))
    if not exe.exists():
        msg = f"{exe} is missing: run `make test-{name}` once (or set {env_var})"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


@dataclass
class Proc:
    popen: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()


def start(cmd: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> Proc:
    f = log.open("ab")
    p = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=f, stderr=subprocess.STDOUT, cwd=cwd or log.parent,
                         start_new_session=True)
    return Proc(p, log)


# ----------------------------------------------------------------------------- stub HTTP upstreams
@dataclass
class Stub:
    """Records every request; `routes[(method, path)] -> (status, json)`."""

    routes: dict[tuple[str, str], Callable[[dict], tuple[int, Any]]]
    calls: list[tuple[str, str, dict, dict]] = field(default_factory=list)
    port: int = 0

    def count(self, path: str) -> int:
        return sum(1 for _, p, _, _ in self.calls if p == path)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def serve_stub(stub: Stub) -> ThreadingHTTPServer:
    class H(BaseHTTPRequestHandler):
        def _do(self, method: str) -> None:
            n = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(n) or b"{}") if n else {}
            fn = stub.routes.get((method, self.path))
            if fn is None:
                self.send_response(404)
                self.end_headers()
                return
            stub.calls.append((method, self.path, body, dict(self.headers)))
            status, payload = fn(body)
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "text/plain" if isinstance(payload, str) else "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            self._do("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._do("POST")

        def log_message(self, *a) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", stub.port or 0), H)
    stub.port = srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def fake_vllm() -> Stub:
    def chat(body: dict) -> tuple[int, Any]:
        last = body["messages"][-1]["content"]
        text = "plan: look up the order, refund if eligible" if "Ticket:" not in last else "reply: your refund is on its way"
        return 200, {"id": "chatcmpl-stub", "object": "chat.completion", "created": 1, "model": body["model"],
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20}}
    return Stub({("POST", "/v1/chat/completions"): chat, ("GET", "/health"): lambda b: (200, "ok"),
                 ("GET", "/metrics"): lambda b: (200, 'vllm:num_requests_waiting{model_name="tiny"} 0.0\n')})


def fake_tools() -> Stub:
    return Stub({("POST", "/v1/retrieve"): lambda b: (200, {"chunks": [{"text": "refunds within 30 days", "score": 0.9}]}),
                 ("POST", "/v1/refunds"): lambda b: (200, {"refund_id": "rf-1", "amount_usd": b.get("amount_usd")})})


