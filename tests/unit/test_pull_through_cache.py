"""`EcrPullThroughCache.image` maps upstream references onto the cache, and refuses other registries."""

from __future__ import annotations

import pytest
from cdktn import App, TerraformStack

from tierwise.constructs.serving.pull_through_cache import DOCKER_HUB, EcrPullThroughCache, EcrPullThroughCacheProps

REG = "111111111111.dkr.ecr.eu-west-1.amazonaws.com"


def _cache(upstream: str = DOCKER_HUB, prefix: str = "docker-hub", secret: str | None = "ecr-pullthroughcache/hub"):
    stack = TerraformStack(App(), "t")
    return EcrPullThroughCache(stack, "c", props=EcrPullThroughCacheProps(
        prefix=prefix, upstream_registry_url=upstream, account_id="111111111111", region="eu-west-1",
        credential_secret_name=secret))


def test_docker_hub_references() -> None:
    c = _cache()
    assert c.image("vllm/vllm-openai:v0.11.0") == f"{REG}/docker-hub/vllm/vllm-openai:v0.11.0"
    assert c.image("docker.io/vllm/vllm-openai:v0.11.0") == f"{REG}/docker-hub/vllm/vllm-openai:v0.11.0"
    assert c.image("busybox:1.37") == f"{REG}/docker-hub/library/busybox:1.37"
    with pytest.raises(ValueError, match="not on"):
        c.image("quay.io/prometheus/prometheus:v3.5.0")


def test_other_registries_need_their_host() -> None:
    c = _cache("quay.io", "quay", None)
    assert c.image("quay.io/prometheus/prometheus:v3.5.0") == f"{REG}/quay/prometheus/prometheus:v3.5.0"
    with pytest.raises(ValueError, match="Docker Hub reference"):
        c.image("vllm/vllm-openai:v0.11.0")


def test_credentials_by_name_with_the_aws_prefix() -> None:
    with pytest.raises(ValueError, match="need credential_secret_name"):
        _cache(secret=None)
    with pytest.raises(ValueError, match="must start with"):
        _cache(secret="dockerhub-creds")
