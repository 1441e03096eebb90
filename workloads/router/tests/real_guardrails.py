"""The real guardrails service (workloads/guardrails, its own venv) on a loopback port, for the router's e2e
tests and bench/stream_guard.py. Plain stdlib + httpx: nothing from the guardrails package is imported
(workloads never import each other); the router talks to it over HTTP as in the cluster."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[3]


def guardrails_python() -> Path:
    return Path(os.environ.get("TIERWISE_GUARDRAILS_PYTHON", REPO / ".venv-guardrails" / "bin" / "python"))


class GuardrailsServer:
    """``with GuardrailsServer(data_dir) as url:`` — started, healthy (``/healthz``), stopped on exit."""

    def __init__(self, data_dir: Path, python: Path | None = None, ready_timeout_s: float = 120.0) -> None:
        self.python = python or guardrails_python()
        self.data_dir = Path(data_dir)
        self.ready_timeout_s = ready_timeout_s
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self._log = open(self.data_dir / "server.log", "wb")
        self.proc = subprocess.Popen(
            [str(self.python), "-m", "uvicorn", "--factory", "tierwise_guardrails.app:create_app", "--host",
             "127.0.0.1", "--port", str(port)], stdout=self._log, stderr=subprocess.STDOUT,
            env=os.environ | {"TIERWISE_GUARDRAILS_DATA_DIR": str(self.data_dir)}, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + self.ready_timeout_s
        while True:  # readiness is an event, not a fixed sleep
            if self.proc.poll() is not None:
                self.__exit__()
                raise RuntimeError(f"guardrails exited {self.proc.returncode}: "
                                   f"{(self.data_dir / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"guardrails did not become healthy in {self.ready_timeout_s} s")
            time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
