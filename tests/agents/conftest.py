"""One synth of dev and prod per session for the agent tests (each provider load costs ~10 s and ~2 GB)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def agent_synths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[object, Path, dict]]:
    from tierwise.app import synth
    from tierwise.config.loader import load_environment

    out = {}
    for name in ("dev", "prod"):
        env = load_environment(name)
        d = tmp_path_factory.mktemp(f"agents-{name}")
        synth(env, d)
        stacks = {p.parent.name: json.loads(p.read_text()) for p in (d / "stacks").glob("*/cdk.tf.json")}
        out[name] = (env, d, stacks)
    return out
