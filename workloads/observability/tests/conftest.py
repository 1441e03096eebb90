"""Shared fixtures: the checkout, environments, and a promtool runner."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tierwise_observability.environment import ObsEnvironment, all_environments, repo_root

from obs_helpers import PKG


@pytest.fixture(scope="session")
def root() -> Path:
    r = repo_root(PKG)
    assert r is not None, "tests run from a checkout (environments/ and workloads/ above this package)"
    return r


@pytest.fixture(scope="session")
def envs(root: Path) -> dict[str, ObsEnvironment]:
    e = all_environments(root)
    assert {"dev", "prod"} <= set(e)
    return e


@pytest.fixture(scope="session")
def promtool() -> str:
    exe = shutil.which("promtool")
    assert exe, "promtool not found: install the Debian package `prometheus` (make .make/system)"
    return exe

