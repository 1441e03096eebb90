"""Shared fixtures. Tests run through the `pytest` executable with --import-mode=importlib, so the
repository root is never on sys.path (it would shadow the jsii `constructs` library)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENV_DIR = REPO / "environments"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def tierwise_exe() -> str:
    exe = shutil.which("tierwise") or str(REPO / ".venv" / "bin" / "tierwise")
    assert Path(exe).exists(), "the tierwise console script is not installed (run `make setup`)"
    return exe


def run_cli(exe: str, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}
    node_bin = REPO / "node_modules" / ".bin"
    env["PATH"] = f"{node_bin}:{env['PATH']}"
    return subprocess.run([exe, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory) -> dict[str, Path]:
    """Every environment in environments/, synthesized once per session in this process."""
    from tierwise.app import synth
    from tierwise.config import list_environments, load_environment

    os.environ["PATH"] = f"{REPO / 'node_modules' / '.bin'}:{os.environ['PATH']}"
    base = tmp_path_factory.mktemp("synth")
    out = {}
    for path in list_environments():
        env = load_environment(path)
        synth(env, base / env.name)
        out[env.name] = base / env.name
    return out


@pytest.fixture(scope="session")
def synthesized_stacks(synthesized: dict[str, Path]) -> dict[str, dict[str, dict]]:
    """`synthesized`, parsed once: {environment: {stack id: Terraform JSON}}."""
    return {name: {p.parent.name: json.loads(p.read_text()) for p in (out / "stacks").glob("*/cdk.tf.json")}
            for name, out in synthesized.items()}
