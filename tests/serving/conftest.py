"""One synth of dev and prod per session (each provider load costs ~10 s and ~2 GB): every serving
test reads the synthesized Terraform JSON, the way Terraform and the policy gate do."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ENVS = ("dev", "prod")
NAMESPACE = "tierwise-serving"


@dataclass
class Synth:
    env: Any  # tierwise.config.Environment
    stack: dict[str, Any]
    stacks: dict[str, dict[str, Any]]

    def resources(self, rtype: str) -> dict[str, dict[str, Any]]:
        return self.stack.get("resource", {}).get(rtype, {})

    def objects(self, kind: str | None = None, stack: str | None = None) -> list[dict[str, Any]]:
        doc = self.stacks[stack] if stack else self.stack
        out = [r["manifest"] for r in doc.get("resource", {}).get("kubernetes_manifest", {}).values()]
        return [o for o in out if kind is None or o["kind"] == kind]

    def object(self, kind: str, name: str, namespace: str | None = NAMESPACE) -> dict[str, Any]:
        found = [o for o in self.objects(kind) if o["metadata"]["name"] == name
                 and o["metadata"].get("namespace") == namespace]
        assert len(found) == 1, f"expected one {kind} {namespace}/{name}, found {len(found)}"
        return found[0]


@pytest.fixture(scope="session")
def synths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Synth]:
    from tierwise.app import build_app
    from tierwise.config.loader import load_environment

    out: dict[str, Synth] = {}
    for name in ENVS:
        env = load_environment(name)
        d = tmp_path_factory.mktemp(f"synth-{name}")
        build_app(env, str(d)).synth()
        stacks = {p.parent.name: json.loads(p.read_text()) for p in (d / "stacks").glob("*/cdk.tf.json")}
        out[name] = Synth(env=env, stack=stacks[f"{name}-serving"], stacks=stacks)
    return out


@pytest.fixture(params=ENVS)
def synth(request: pytest.FixtureRequest, synths: dict[str, Synth]) -> Synth:
    return synths[request.param]

