"""The serving tests read the session's one synth of every environment (`synthesized_stacks`,
tests/conftest.py): the synthesized Terraform JSON, the way Terraform and the policy gate do."""

from __future__ import annotations

from dataclasses import dataclass
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
def synths(synthesized_stacks: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Synth]:
    from tierwise.config.loader import load_environment

    return {name: Synth(env=load_environment(name), stack=synthesized_stacks[name][f"{name}-serving"],
                        stacks=synthesized_stacks[name]) for name in ENVS}


@pytest.fixture(params=ENVS)
def synth(request: pytest.FixtureRequest, synths: dict[str, Synth]) -> Synth:
    return synths[request.param]

