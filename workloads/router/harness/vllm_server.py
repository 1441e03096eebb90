"""Start the real vLLM OpenAI server (CPU) on a free loopback port with the tiny model — stdlib only.

Usable from any Python (the router's test venv included): model building and the server run in the
heavy vLLM environment through subprocesses.

    from vllm_server import TinyVllm          # harness/ on sys.path, or load by file path
    with TinyVllm(vllm_python, cache_dir) as srv:
        srv.base_url      # http://127.0.0.1:PORT  (OpenAI API under /v1)
        srv.model         # "tiny"; adapters "billing" and "support" are served as LoRA modules

CLI:  python workloads/router/harness/vllm_server.py [--python .venv-vllm/bin/python] [--dir DIR]
      (prints the base URL and serves until Ctrl-C)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # loaded by file path from other suites and benches: procs.py sits beside it
    sys.path.insert(0, str(HERE))
from procs import free_port, wait_healthy  # noqa: E402  (free_port: local.py imports it from here)

REPO = HERE.parent.parent.parent
DEFAULT_PYTHON = REPO / ".venv-vllm" / "bin" / "python"


def vllm_python() -> Path:
    return Path(os.environ.get("TIERWISE_VLLM_PYTHON", str(DEFAULT_PYTHON)))


def build_tiny(python: Path, out: Path) -> dict:
    r = subprocess.run([str(python), str(HERE / "build_tiny.py"), str(out)], check=True,
                       capture_output=True, text=True, env=os.environ | {"HF_HUB_OFFLINE": "1"})
    return json.loads(r.stdout.strip().splitlines()[-1])


class TinyVllm:
    def __init__(self, python: Path | None = None, model_dir: Path | None = None, *, max_loras: int = 2,
                 startup_timeout_s: float = 300.0, log_path: Path | None = None, extra_args: list[str] = ()):
        self.python = Path(python or vllm_python())
        self._tmp = None if model_dir else tempfile.TemporaryDirectory(prefix="tw-tiny-")
        self.model_dir = Path(model_dir or self._tmp.name)
        self.max_loras = max_loras
        self.timeout = startup_timeout_s
        self.log_path = log_path or (self.model_dir / "vllm.log")
        self.extra = list(extra_args)
        self.model = "tiny"
        self.adapters: dict[str, str] = {}
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> TinyVllm:
        if not self.python.exists():
            raise FileNotFoundError(f"vLLM python not found: {self.python} (run `make vllm-env`)")
        info = build_tiny(self.python, self.model_dir)
        self.adapters = info["adapters"]
        self.port = free_port()
        cmd = [str(self.python), "-m", "vllm.entrypoints.openai.api_server", "--host", "127.0.0.1",
               "--port", str(self.port), "--model", info["base"], "--served-model-name", self.model,
               "--enable-lora", "--lora-modules", *[f"{k}={v}" for k, v in self.adapters.items()],
               "--max-lora-rank", "8", "--max-loras", str(self.max_loras), "--max-model-len", "256",
               "--enable-prefix-caching", "--dtype", "float32", *self.extra]
        env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1",
                            "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        state = wait_healthy(self.proc, self.base_url + "/health", self.timeout, poll_s=0.5, request_timeout_s=2)
        if state == "up":
            return self
        if state == "exited":
            raise RuntimeError(f"vLLM exited with {self.proc.returncode}; see {self.log_path}:\n"
                               + self.log_tail())
        self.stop()
        raise TimeoutError(f"vLLM not healthy after {self.timeout}s; see {self.log_path}")

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        if getattr(self, "_log", None):
            self._log.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> TinyVllm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description="serve the tiny model with vLLM on loopback")
    ap.add_argument("--python", type=Path, default=None)
    ap.add_argument("--dir", type=Path, default=None, help="model cache dir (default: a temp dir)")
    a = ap.parse_args()
    with TinyVllm(a.python, a.dir) as s:
        print(json.dumps({"base_url": s.base_url, "model": s.model, "adapters": list(s.adapters)}), flush=True)
        try:
            s.proc.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
