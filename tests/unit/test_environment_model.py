"""Environment files: the shipped ones load; broken ones fail with the YAML path and the reason."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tierwise.config import ConfigError, list_environments, load_environment

REPO = Path(__file__).resolve().parents[2]


def test_every_shipped_environment_loads():
    names = [p.stem for p in list_environments()]
    assert {"dev", "prod"} <= set(names)
    for p in list_environments():
        env = load_environment(p)
        assert env.name == p.stem, f"{p}: name field should match the file name"


def test_prod_has_one_pool_per_tier():
    env = load_environment(REPO / "environments" / "prod.yaml")
    assert {p.sharing.mode for p in env.gpu_pools} == {"full", "mig", "timeslice"}
    assert len(env.availability_zones) == 3 and len(env.teams) == 3
    assert any(m.params_b >= 70 and m.gpu.kind == "full" for m in env.models)


def _dev() -> dict:
    return yaml.safe_load((REPO / "environments" / "dev.yaml").read_text())


def _mutations():
    def unknown_key(d):
        d["teams"][0]["monthly_budgit_usd"] = 1

    def mig_profile_missing(d):
        d["models"][0]["gpu"]["profile"] = "3g.40gb"  # an A100-80GB profile on a 40GB pool

    def model_too_big(d):
        d["models"][0]["precision"] = "fp32"
        d["models"][0]["params_b"] = 30

    def pool_missing(d):
        d["models"][1]["pool"] = "nope"

    def quota_over_limit(d):
        d["teams"][0]["gpu_quota"]["slice-l4"] = 99

    def negative_budget(d):
        d["teams"][0]["monthly_budget_usd"] = -5

    def wrong_tier(d):
        d["models"][1]["tier"] = "large"

    def bad_domain(d):
        d["network"]["egress_allowlist"].append("not a domain")

    def az_wrong_region(d):
        d["availability_zones"][1] = "eu-west-1b"

    def mig_layout_overflow(d):
        d["gpu_pools"][0]["sharing"]["layout"] = {"3g.20gb": 2, "2g.10gb": 1}

    def mig_layout_memory_overflow(d):
        # 3+3+1 = 7 compute slices fit a 40GB A100, but 4+4+1 = 9 memory slices do not (it has 8).
        d["gpu_pools"][0]["sharing"]["layout"] = {"3g.20gb": 2, "1g.5gb": 1}

    def unknown_model_for_team(d):
        d["teams"][0]["allowed_models"].append("gpt-9")

    return [
        (unknown_key, "teams[0].monthly_budgit_usd", "Extra inputs are not permitted"),
        (mig_profile_missing, "models[0] (llama-8b)", "'3g.40gb' is not in pool 'mig-a100'"),
        (model_too_big, "models[0] (llama-8b)", "need 111.8 GiB of weights"),
        (pool_missing, "models[1] (qwen-1-5b)", "pool 'nope' is not in gpu_pools"),
        (quota_over_limit, "teams[0] (assistants)", "exceeds the pool's gpu_limit 4"),
        (negative_budget, "teams[0].monthly_budget_usd", "greater than 0"),
        (wrong_tier, "models[1]", "tier 'large' covers 34B"),
        (bad_domain, "network.egress_allowlist", "'not a domain' is not a domain name"),
        (az_wrong_region, "availability zone 'eu-west-1b' is not in region 'us-west-2'", ""),
        (mig_layout_overflow, "gpu_pools[0]", "uses 8 compute slices"),
        (mig_layout_memory_overflow, "gpu_pools[0]", "uses 9 memory slices; A100-SXM4-40GB has 8"),
        (unknown_model_for_team, "teams[0] (assistants)", "'gpt-9' is neither in models"),
    ]


@pytest.mark.parametrize("mutate,where,why", _mutations(), ids=lambda v: getattr(v, "__name__", None))
def test_fails_with_field_path_and_reason(tmp_path, mutate, where, why):
    d = copy.deepcopy(_dev())
    mutate(d)
    f = tmp_path / "broken.yaml"
    f.write_text(yaml.safe_dump(d))
    with pytest.raises(ConfigError) as e:
        load_environment(f)
    msg = str(e.value)
    assert str(f) in msg and where in msg and why in msg, msg


def test_fails_on_yaml_syntax(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_environment(f)


def test_fails_on_missing_file_lists_known():
    with pytest.raises(ConfigError, match="known environments: .*dev.*prod"):
        load_environment("staging-does-not-exist")


def _prod() -> dict:
    return yaml.safe_load((REPO / "environments" / "prod.yaml").read_text())


def test_old_prod_mig_layout_on_a100_80gb_is_refused(tmp_path):
    """Issue 13 item 4: 2x 3g.40gb + 1x 1g.10gb on p4de (A100-80GB) needs 9 of 8 memory slices."""
    d = _prod()
    pool = next(p for p in d["gpu_pools"] if (p.get("sharing") or {}).get("mode") == "mig")
    pool["sharing"]["layout"] = {"3g.40gb": 2, "1g.10gb": 1}
    f = tmp_path / "prod.yaml"
    f.write_text(yaml.safe_dump(d))
    with pytest.raises(ConfigError, match="uses 9 memory slices; A100-SXM4-80GB has 8"):
        load_environment(f)


def test_shipped_mig_layouts_fill_at_most_every_slice():
    from tierwise.config.hardware import FAMILIES

    for p in list_environments():
        for pool in load_environment(p).gpu_pools:
            if pool.sharing.mode == "mig":
                gpu = FAMILIES[pool.instance_families[0]].gpu
                assert gpu.mig_layout_problems(dict(pool.sharing.layout)) == [], (p.stem, pool.name)
