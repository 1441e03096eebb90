"""Helpers shared by the tests (importable: `pythonpath = ["tests"]`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

PKG = Path(__file__).resolve().parents[1]


def run_promtool(promtool: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
