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
