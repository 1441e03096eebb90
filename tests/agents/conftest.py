"""The agent tests read the session's one synth of every environment (`synthesized`, tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def agent_synths(synthesized: dict[str, Path], synthesized_stacks: dict[str, dict[str, dict]]) -> dict[str, tuple[object, Path, dict]]:
    from tierwise.config.loader import load_environment

    return {name: (load_environment(name), synthesized[name], synthesized_stacks[name]) for name in ("dev", "prod")}
