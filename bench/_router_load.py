"""Loopback plumbing the router benchmarks share (router_overhead.py, router_faults.py, ledger_durable.py):
free ports, waiting for a process's HTTP endpoint, percentiles, stopping process groups, reading router counters.
Starting Redis, moto and the router itself lives in workloads/router/harness/procs.py, written once for the
router's tests, its harness and these benchmarks; it is re-exported here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROUTER_TESTS = REPO / "workloads" / "router" / "tests"
sys.path.insert(0, str(REPO / "workloads" / "router" / "harness"))
from procs import free_port, start_moto, start_redis, start_router, wait_healthy  # noqa: E402,F401

__all__ = ["REPO", "ROUTER_TESTS", "free_port", "metric_lines", "pct", "start_moto", "start_redis", "start_router",
           "stop_groups", "wait_up"]


def wait_up(proc: subprocess.Popen, url: str, timeout: float = 30) -> None:
    """procs.wait_healthy, raising unless the URL answered: a process that exits fails at once."""
    state = wait_healthy(proc, url, timeout)
    if state != "up":
        raise RuntimeError(f"{url}: {state} (pid {proc.pid}, exit code {proc.poll()})")


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else float("nan")


def stop_groups(procs: list[subprocess.Popen], timeout_s: float) -> None:
    """SIGTERM each process's group (they were started with ``start_new_session``), SIGKILL what has not
    exited within ``timeout_s``."""
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=timeout_s)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def metric_lines(port: int, prefixes: tuple[str, ...]) -> list[str]:
    """The router's ``/metrics`` sample lines that start with one of ``prefixes``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return [ln for ln in resp.read().decode().splitlines() if ln.startswith(prefixes)]
