"""The training tests read the session's one synth of every environment (`synthesized_stacks`, tests/conftest.py),
the way Terraform and the policy gate read `cdktf.out/`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

ENVS = ("dev", "prod")


@dataclass
class Out:
    env: Any  # tierwise.config.Environment
    stacks: dict[str, dict[str, Any]]

    def stack(self, layer: str) -> dict[str, Any]:
        return self.stacks[f"{self.env.name}-{layer}"]

    def resources(self, rtype: str, layer: str = "training") -> dict[str, dict[str, Any]]:
        return self.stack(layer).get("resource", {}).get(rtype, {})

    def objects(self, kind: str, layer: str = "training") -> list[dict[str, Any]]:
        return [r["manifest"] for r in self.resources("kubernetes_manifest", layer).values() if r["manifest"]["kind"] == kind]

    def object(self, kind: str, name: str, namespace: str | None, layer: str = "training") -> dict[str, Any]:
        found = [o for o in self.objects(kind, layer) if o["metadata"]["name"] == name
                 and o["metadata"].get("namespace") == namespace]
        assert len(found) == 1, f"expected one {kind} {namespace}/{name} in {layer}, found {len(found)}"
        return found[0]

    def serving_ref(self, token: str) -> str:
        """`${data.terraform_remote_state.<serving>.outputs.<output>}` -> the serving-stack expression it reads."""
        head = "${data.terraform_remote_state.cross-stack-reference-input-" + f"{self.env.name}-serving.outputs."
        assert token.startswith(head) and token.endswith("}"), token
        return self.stack("serving")["output"][token[len(head):-1]]["value"]


@pytest.fixture(scope="session")
def training_outs(synthesized_stacks: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Out]:
    from tierwise.config import load_environment

    return {name: Out(env=load_environment(name), stacks=synthesized_stacks[name]) for name in ENVS}


@pytest.fixture(params=ENVS)
def out(request: pytest.FixtureRequest, training_outs: dict[str, Out]) -> Out:
    return training_outs[request.param]
