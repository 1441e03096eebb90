"""Local processes the router's tests, benchmarks and harness start on 127.0.0.1 — stdlib only, like the
rest of harness/: a free port, waiting for a process's health endpoint, a Redis server, moto's S3 server
(the real S3 REST protocol) and the router itself (the installed `tierwise-router serve`, waited on
until `/healthz` answers). Written once here and imported by vllm_server.py, tests/conftest.py,
tests/test_ledger_durable.py and the router benchmarks (bench/_router_load.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(proc: subprocess.Popen, url: str, timeout_s: float, *, poll_s: float = 0.1,
                 request_timeout_s: float = 1.0) -> str:
    """Poll ``url`` until it answers 200 (``"up"``), ``proc`` exits (``"exited"``) or ``timeout_s`` passes
    (``"timeout"``); the caller decides what each means."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return "exited"
        try:
            with urllib.request.urlopen(url, timeout=request_timeout_s) as r:
                if r.status == 200:
                    return "up"
        except OSError:
            pass
        time.sleep(poll_s)
    return "timeout"


def start_redis(exe: str, workdir: str | Path, *, new_session: bool = False,
                timeout_s: float = 20) -> tuple[subprocess.Popen, str]:
    """``redis-server`` on a free loopback port, no persistence, answering PING. Returns (process, URL);
    raises RuntimeError (after killing it) when it does not answer within ``timeout_s``."""
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=new_session)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def start_moto() -> tuple[Any, str]:
    """moto's ThreadedMotoServer on a free loopback port. Returns (server, endpoint URL); ``server.stop()``."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"


def start_router(env: dict[str, str], port: int, log: Path, *, timeout_s: float = 60) -> subprocess.Popen:
    """``tierwise-router serve`` (the console script beside this Python) on ``port`` in its own session
    (stop it with ``os.killpg``), its stdout and stderr appended to ``log``.
    Returns once ``/healthz`` answers 200; raises RuntimeError with the log's tail when the process exits
    first or does not answer within ``timeout_s`` (then it is killed)."""
    exe = Path(sys.executable).parent / "tierwise-router"
    with open(log, "ab") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen([str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)], env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    state = wait_healthy(proc, f"http://127.0.0.1:{port}/healthz", timeout_s)
    if state == "up":
        return proc
    if state == "exited":
        raise RuntimeError(f"router exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
    proc.kill()
    raise RuntimeError(f"router did not answer /healthz in {timeout_s} s:\n{log.read_text(errors='replace')[-3000:]}")
