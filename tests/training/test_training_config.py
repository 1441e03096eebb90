"""The `training:` section: defaults keep older files loading; a bad pipeline fails at load time with its YAML
field path and the reason."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tierwise.config import ConfigError, load_environment
from tierwise.config.training import Training, dataset_prefix, mig_profile, pipeline_namespace

REPO = Path(__file__).resolve().parents[2]


def _load(name: str) -> dict:
    return yaml.safe_load((REPO / "environments" / f"{name}.yaml").read_text())


def _write(tmp_path: Path, d: dict) -> Path:
    f = tmp_path / "env.yaml"
    f.write_text(yaml.safe_dump(d))
    return f


def test_an_environment_without_a_training_section_loads_with_no_pipelines(tmp_path):
    d = _load("dev")
    d.pop("training")
    env = load_environment(_write(tmp_path, d))
    assert env.training == Training() and env.training.pipelines == []
    assert env.training.datasets_prefix == "datasets"


def test_shipped_pipelines_resolve_namespace_profile_and_dataset():
    dev, prod = load_environment("dev"), load_environment("prod")
    [p] = dev.training.pipelines
    assert pipeline_namespace(dev, p) == "assistants"
    assert mig_profile(p, dev.pool(p.pool)) == "3g.20gb"  # the 40GB A100 layout's largest slice
    assert dataset_prefix(dev, p) == f"datasets/{p.name}/{p.dataset_id}"
    [q] = prod.training.pipelines
    assert (pipeline_namespace(prod, q), mig_profile(q, prod.pool(q.pool))) == ("billing", "3g.40gb")


def _pipeline(d: dict) -> dict:
    return d["training"]["pipelines"][0]


def _mutations():
    def unknown_key(d):
        _pipeline(d)["max_stepz"] = 10

    def team_missing(d):
        _pipeline(d)["team"] = "nobody"

    def namespace_not_the_teams(d):
        _pipeline(d)["namespace"] = "kube-system"

    def pool_missing(d):
        _pipeline(d)["pool"] = "nope"

    def pool_without_spot(d):
        d["gpu_pools"][0]["capacity_types"] = ["on-demand"]

    def team_without_quota(d):
        d["teams"][0]["gpu_quota"].pop("mig-a100")

    def model_missing(d):
        _pipeline(d)["model"] = "gpt-9"

    def model_not_allowed_for_team(d):
        d["teams"][0]["allowed_models"].remove("llama-8b")
        d["agents"] = []  # the dev agent calls llama-8b: it would fail first

    def model_without_adapters(d):
        d["models"][0]["lora_adapters"] = []

    def adapter_missing(d):
        _pipeline(d)["adapter"] = "legal"

    def mig_profile_not_in_layout(d):
        _pipeline(d)["mig_profile"] = "7g.40gb"

    def mig_profile_on_timeslice_pool(d):
        _pipeline(d).update(pool="slice-l4", model="qwen-1-5b", adapter="classify", mig_profile="1g.5gb")

    def does_not_fit(d):
        _pipeline(d).update(method="lora", mig_profile="1g.5gb")  # 8B at bf16 on a 5 GiB slice

    def bad_dataset_id(d):
        _pipeline(d)["dataset_id"] = "latest"

    def duplicate_name(d):
        d["training"]["pipelines"].append(copy.deepcopy(_pipeline(d)))

    def datasets_over_weights(d):
        d["training"]["datasets_prefix"] = "meta-llama"

    def seq_len_over_model(d):
        _pipeline(d)["max_seq_len"] = 65536

    return [
        (unknown_key, "training.pipelines[0].max_stepz", "Extra inputs are not permitted"),
        (team_missing, "training.pipelines[0].team", "team 'nobody' is not in teams"),
        (namespace_not_the_teams, "training.pipelines[0].namespace", "is not one of team assistants's namespaces"),
        (pool_missing, "training.pipelines[0].pool", "pool 'nope' is not in gpu_pools"),
        (pool_without_spot, "training.pipelines[0].pool", "training runs on spot"),
        (team_without_quota, "training.pipelines[0].pool", "team assistants has no gpu_quota on pool 'mig-a100'"),
        (model_missing, "training.pipelines[0].model", "model 'gpt-9' is not in models"),
        (model_not_allowed_for_team, "training.pipelines[0].model", "not in team assistants's allowed_models"),
        (model_without_adapters, "training.pipelines[0].model", "has no lora_adapters"),
        (adapter_missing, "training.pipelines[0].adapter", "'legal' is not one of model llama-8b's lora_adapters"),
        (mig_profile_not_in_layout, "training.pipelines[0].mig_profile", "'7g.40gb' is not in pool 'mig-a100'"),
        (mig_profile_on_timeslice_pool, "training.pipelines[0].mig_profile", "shares GPUs as 'timeslice', not MIG"),
        (does_not_fit, "training.pipelines[0].pool", "lora loads llama-8b (8B) at bf16"),
        (bad_dataset_id, "training.pipelines[0].dataset_id", "should match pattern"),
        (duplicate_name, "training.pipelines[1].name", "appears twice"),
        (datasets_over_weights, "training.datasets_prefix", "overlaps the weights of models"),
        (seq_len_over_model, "training.pipelines[0].max_seq_len", "exceeds model llama-8b's max_model_len 8192"),
    ]


@pytest.mark.parametrize("mutate,where,why", _mutations(), ids=lambda v: getattr(v, "__name__", None))
def test_fails_with_field_path_and_reason(tmp_path, mutate, where, why):
    d = copy.deepcopy(_load("dev"))
    mutate(d)
    f = _write(tmp_path, d)
    with pytest.raises(ConfigError) as e:
        load_environment(f)
    msg = str(e.value)
    assert str(f) in msg and where in msg and why in msg, msg
