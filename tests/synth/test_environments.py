"""Every environment synthesizes; every emitted Kubernetes object passes its upstream schema;
synthesis is deterministic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tierwise.app import LAYERS, synth
from tierwise.config import load_environment
from tierwise.schemas import iter_manifests, validate_object

pytestmark = pytest.mark.synth
REPO = Path(__file__).resolve().parents[2]


def test_every_environment_has_every_stack(synthesized):
    assert {"dev", "prod"} <= set(synthesized)
    for env, out in synthesized.items():
        stacks = sorted(p.name for p in (out / "stacks").iterdir())
        assert stacks == sorted(f"{env}-{layer}" for layer in LAYERS), stacks
        for s in stacks:
            doc = json.loads((out / "stacks" / s / "cdk.tf.json").read_text())
            backend = doc["terraform"]["backend"]["s3"]
            assert backend["key"].endswith(f"/{s}.tfstate") and backend["encrypt"] is True
            assert backend.get("use_lockfile") is True or "dynamodb_table" in backend


def test_every_kubernetes_object_matches_upstream_schema(synthesized):
    failures, kinds = [], set()
    for env, out in synthesized.items():
        for stack, addr, obj in iter_manifests(out):
            kinds.add(f"{obj['apiVersion']}/{obj['kind']}")
            for err in validate_object(obj):
                failures.append(f"{stack} {addr} {obj['kind']} {obj['metadata'].get('name')}: {err}")
    assert not failures, "\n".join(failures)
    # the walk really covered custom and built-in kinds
    assert {"karpenter.sh/v1/NodePool", "kueue.x-k8s.io/v1beta2/ClusterQueue", "v1/Namespace",
            "resource.k8s.io/v1/ResourceClaimTemplate", "networking.k8s.io/v1/NetworkPolicy"} <= kinds


def test_schema_check_catches_a_misspelled_field():
    bad = {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue", "metadata": {"name": "q", "namespace": "n"},
           "spec": {"clusterQueu": "x"}}
    assert any("clusterQueu: unknown field" in e for e in validate_object(bad))
    assert validate_object({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})


def test_gpu_pools_have_gpu_and_cpu_limits_and_taint(synthesized):
    env = load_environment(REPO / "environments" / "prod.yaml")
    pools = {o["metadata"]["name"]: o for stack, _, o in iter_manifests(synthesized["prod"])
             if o["kind"] == "NodePool" and stack == "prod-tenancy"}  # the CPU agent pool lives in prod-agents
    assert set(pools) == {p.name for p in env.gpu_pools}
    for p in env.gpu_pools:
        spec = pools[p.name]["spec"]
        assert spec["limits"]["nvidia.com/gpu"] == p.gpu_limit and spec["limits"]["cpu"] > 0
        assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"} in spec["template"]["spec"]["taints"]


def test_synthesis_is_deterministic(synthesized, tmp_path):
    synth(load_environment("dev"), tmp_path / "again")
    first = synthesized["dev"] / "stacks"
    for f in sorted(first.glob("*/cdk.tf.json")):
        again = tmp_path / "again" / "stacks" / f.parent.name / "cdk.tf.json"
        assert f.read_bytes() == again.read_bytes(), f"{f.parent.name} differs between two synths"
