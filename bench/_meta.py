"""Metadata every benchmark result carries (STYLE §9)."""

from __future__ import annotations

import datetime as dt
import json
import platform
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def metadata(label: str, **config) -> dict:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    except OSError:
        sha = ""
    return {"label": label, "git_sha": sha, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(), "host": platform.node(), "machine": platform.machine(),
            "cpus": __import__("os").cpu_count(), "config": config}


def write_result(scenario: str, label: str, result: dict) -> Path:
    out = REPO / "bench" / "results" / scenario / f"{label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return out


def wait_quiet(max_load: float, max_wait_s: float, poll_s: float = 5.0) -> dict:
    """Block until the 1-minute load average is at most ``max_load`` or ``max_wait_s`` passed (the machine
    is shared: a benchmark's tail numbers mean little under someone else's build). Returns what happened,
    for the result's metadata."""
    import os
    import time

    t0 = time.monotonic()
    seen = []
    while True:
        load = os.getloadavg()[0]
        seen.append(round(load, 2))
        if load <= max_load or time.monotonic() - t0 >= max_wait_s:
            return {"max_load": max_load, "waited_s": round(time.monotonic() - t0, 1), "load_1m_at_start": seen[-1],
                    "quiet": load <= max_load, "min_load_seen": min(seen)}
        time.sleep(poll_s)


def dirty_paths(*paths: str) -> list[str]:
    """Files under ``paths`` that differ from HEAD (several engineers share this working tree: a result
    measured with someone's uncommitted edit says so)."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=REPO, capture_output=True,
                             text=True).stdout
    except OSError:
        return []
    return sorted(ln[3:] for ln in out.splitlines() if ln.strip())


def router_package(python: str) -> str:
    """Where the router process will import ``tierwise_router`` from (``PYTHONPATH`` can point a run at a
    clean export of a commit while others edit the shared tree)."""
    try:
        return subprocess.run([python, "-c", "import tierwise_router; print(tierwise_router.__file__)"],
                              capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""
