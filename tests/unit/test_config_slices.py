"""Derived facts live on the config model, and each stack receives its slice of the environment.

The numbers asserted here are the ones the shipped environments synthesize (model servers, training Jobs and
Kueue quotas are sized from them), so a change to a derivation shows up as a failing value, not as a diff
noticed later in `cdktf.out/`."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from tierwise.config import load_environment
from tierwise.config.infra import SYSTEM_PLACEMENT
from tierwise.config.slices import REPO_ROOT, ObservabilitySlice, Slices, StackSlice

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prod():
    return load_environment(REPO / "environments" / "prod.yaml")


@pytest.fixture(scope="module")
def dev():
    return load_environment(REPO / "environments" / "dev.yaml")


def test_pool_facts_units_host_share_and_pod_resources(prod) -> None:
    full, mig, ts = prod.pool("full-h100"), prod.pool("mig-a100"), prod.pool("slice-l4")
    assert (full.units_per_gpu, mig.units_per_gpu, ts.units_per_gpu) == (1, 4, 4)  # 1x3g+1x2g+2x1g; 4 replicas
    # p5.48xlarge: 192 vCPU / 2048 GiB for 8 GPUs -> 24 vCPU, 256 GiB per GPU
    assert full.host_share(1) == (24, 256) and full.host_share(8) == (192, 2048)
    # a pod asking for more GPUs than a node has is sized for one node's worth; 80% of the share is requested
    assert full.pod_resources(8) == full.pod_resources(64) == ("153", 1638)
    assert full.pod_resources() == full.pod_resources(1) == ("19", 204)
    # a shared GPU's unit gets 1/units of the per-GPU share, never below 1 CPU / 4 GiB
    # p4d/p4de: 12 vCPU, 144 GiB per GPU -> 3 vCPU, 36 GiB per MIG unit -> 80%
    assert mig.host_share(1) == (12, 144) and mig.pod_resources() == ("2", 28)
    assert ts.pod_resources() == ("1", 4)


def test_serving_facts_namespace_endpoints_and_prometheus(prod) -> None:
    sv = prod.serving
    assert sv.namespace == "tierwise-serving"
    assert sv.router_endpoint.url == "http://router.tierwise-serving.svc:8080"
    assert {sv.rag_endpoint.port, sv.guardrails_endpoint.port} == {8080}
    assert (sv.prometheus.name, sv.prometheus.namespace, sv.prometheus.port) == ("prometheus-server", "monitoring", 9090)
    assert sv.prometheus.url == sv.prometheus_url


def test_team_workload_namespace_defaults_to_the_first(prod) -> None:
    team = prod.teams[0]
    assert team.namespaces[0] == "assistants"  # prod's first team, first namespace
    assert team.workload_namespace() == "assistants"
    assert team.workload_namespace(team.namespaces[-1]) == team.namespaces[-1] != "assistants"


# What environments/{dev,prod}.yaml derive to (MIG profiles the models use, every team namespace, where a
# pipeline or agent without a namespace of its own runs): literal values, so a changed derivation fails here.
SHIPPED = {
    "dev": {"mig_profiles": ("3g.20gb",), "client_namespaces": ["assistants"],
            "training": {"llama-8b-billing": "assistants"}, "agents": {"ticket-triage": "assistants"}},
    "prod": {"mig_profiles": ("1g.10gb", "3g.40gb"), "client_namespaces": ["assistants", "assistants-batch", "billing", "research"],
             "training": {"mistral-24b-billing": "billing"}, "agents": {"invoice-reconciler": "billing"}},
}


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_every_slice_carries_the_frame_and_only_its_sections(name: str) -> None:
    env = load_environment(REPO / "environments" / f"{name}.yaml")
    s = Slices.of(env)
    frame = {f.name for f in dataclasses.fields(StackSlice)}
    for field in dataclasses.fields(Slices):
        sl = getattr(s, field.name)
        assert isinstance(sl, StackSlice) and type(sl).__name__.lower() == f"{field.name}slice"
        assert (sl.name, sl.account_id, sl.region, sl.state, dict(sl.tags), sl.protect_stateful) == (
            env.name, env.account_id, env.region, env.state, env.tags, env.protect_stateful)
        assert sl.prefix == env.prefix == {"dev": "tierwise-dev", "prod": "tierwise-prod"}[name]
        assert {f.name for f in dataclasses.fields(sl)} - frame, f"{field.name}: a slice adds what its stack needs"
        with pytest.raises(dataclasses.FrozenInstanceError):
            sl.name = "other"  # type: ignore[misc]
    # the slices hold what the stacks used to read off the environment: the values the shipped YAML gives
    want = SHIPPED[name]
    assert s.tenancy.mig_profiles == want["mig_profiles"]
    assert list(s.serving.client_namespaces) == want["client_namespaces"]
    assert list(s.governance.bedrock_invoke_arns) == env.bedrock_invoke_arns
    assert s.agents.router == env.serving.router_endpoint and s.observability.prometheus == env.serving.prometheus
    # no pipeline or agent names a namespace in the shipped YAML: each lands in its team's first one
    assert {p.name: s.training.namespace(p) for p in env.training.pipelines} == want["training"]
    assert {a.name: s.agents.namespace(a) for a in env.agents} == want["agents"]
    # slices share the environment's (frozen) section objects rather than copying them
    assert s.serving.serving is env.serving and s.network.network is env.network


def test_slices_mappings_are_read_only(dev) -> None:
    s = Slices.of(dev)
    with pytest.raises(TypeError):
        s.serving.gpu_pools["x"] = dev.gpu_pools[0]  # type: ignore[index]


def test_observability_files_come_from_the_checkout_whatever_the_working_directory(dev, tmp_path: Path) -> None:
    here = os.getcwd()
    try:
        os.chdir(tmp_path)  # a checkout-less CWD: the old code looked in ./workloads first
        gen = Slices.of(dev).observability.generated_dir
    finally:
        os.chdir(here)
    assert gen == REPO_ROOT / "workloads" / "observability" / "generated" / "dev" and REPO_ROOT == REPO
    assert Slices.of(dev).observability.generated_file("prometheus-helm-values.yaml").is_file()


def test_fails_on_a_missing_generated_file_naming_it_and_the_command(dev, tmp_path: Path) -> None:
    (tmp_path / "dev").mkdir()
    sl: ObservabilitySlice = Slices.of(dev, observability_generated=tmp_path).observability
    assert sl.generated_dir == tmp_path / "dev"
    with pytest.raises(FileNotFoundError) as err:
        sl.generated_file("prometheus-helm-values.yaml")
    msg = str(err.value)
    assert str(tmp_path / "dev" / "prometheus-helm-values.yaml") in msg
    assert "tierwise-observability generate" in msg and "'dev'" in msg


def test_system_placement_is_what_the_helm_values_spell(prod) -> None:
    p = prod.cluster.system_placement
    assert p is SYSTEM_PLACEMENT
    assert p.helm_values() == {"nodeSelector": {"tierwise.io/node-role": "system"},
                               "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}]}
    v = p.helm_values()
    v["nodeSelector"]["x"] = "y"
    assert "x" not in p.node_selector  # fresh objects every time: merging into chart values cannot leak
    terms = p.node_affinity()["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": "tierwise.io/node-role", "operator": "In", "values": ["system"]}]}]


@pytest.mark.synth
@pytest.mark.parametrize("name", ["dev", "prod"])
def test_system_placement_matches_the_system_node_group(synthesized_stacks, name: str) -> None:
    """The config's placement fact and the nodes the cluster stack creates agree: label selected, taint tolerated."""
    [group] = synthesized_stacks[name][f"{name}-cluster"]["resource"]["aws_eks_node_group"].values()
    assert SYSTEM_PLACEMENT.node_selector.items() <= group["labels"].items()
    assert {t["key"] for t in group["taint"]} <= set(SYSTEM_PLACEMENT.tolerated_taints)
