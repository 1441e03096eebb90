"""Issue 13 item 5: every image the platform runs is reachable under the environment's egress rules — through the
capacity stack's ECR pull-through cache rules or nvcr.io mirror repositories (tierwise.config.registries decides),
proven from cdktf.out by TW-DEPLOY-003 with the charts' vendored defaults merged in."""

from __future__ import annotations

import json

import pytest

from tierwise.config.registries import UPSTREAMS
from tierwise.policies.checks.deploy.tw_deploy_003_image_sources import route_images
from tierwise.policies.engine import load_index

ENVS = ("dev", "prod")


@pytest.mark.parametrize("env_name", ENVS)
def test_every_image_is_routed_through_ecr(synthesized, env_name: str) -> None:
    routes, unvendored = route_images(load_index(synthesized[env_name]))
    assert unvendored == [], "every chart's defaults must be vendored, or its default images go unchecked"
    unreachable = [(r.use.owner.address, r.use.where, r.use.image, r.why) for r in routes if not r.how]
    assert unreachable == []
    hows = {r.how.split(" ")[0] for r in routes}
    assert "egress" not in hows, "no image should need internet egress from the nodes"
    images = {r.use.image for r in routes}
    # the controllers the review found unpullable, each now through this account's ECR
    for upstream in ("ecr-public/karpenter/controller", "nvcr/nvidia", "k8s/kueue/kueue", "k8s/lws/lws",
                     "ghcr/kedacore/keda", "docker-hub/qdrant/qdrant", "k8s/nfd/node-feature-discovery",
                     "k8s/dra-driver-nvidia/dra-driver-nvidia-gpu", "quay/prometheus/prometheus"):
        assert any(f".amazonaws.com/{upstream}" in i for i in images), upstream


@pytest.mark.parametrize("env_name", ENVS)
def test_one_cache_rule_per_supported_upstream_and_mirrors_for_nvcr(synthesized_stacks, env_name: str) -> None:
    stacks = synthesized_stacks[env_name]
    rules = {r["ecr_repository_prefix"]: r for doc in stacks.values()
             for r in doc.get("resource", {}).get("aws_ecr_pull_through_cache_rule", {}).values()}
    want = {u.prefix: u for u in UPSTREAMS if u.mode == "cache"}
    assert set(rules) == set(want)
    for prefix, u in want.items():
        assert rules[prefix]["upstream_registry_url"] == u.ecr_upstream_url
        assert ("credential_arn" in rules[prefix]) == u.needs_credentials
    capacity = stacks[f"{env_name}-capacity"]["resource"]
    mirrors = {r["name"] for r in capacity["aws_ecr_repository"].values()}
    assert {"nvcr/nvidia/gpu-operator", "nvcr/nvidia/k8s-device-plugin", "nvcr/nvidia/cloud-native/k8s-mig-manager"} <= mirrors
    for r in capacity["aws_ecr_repository"].values():
        assert r["image_tag_mutability"] == "IMMUTABLE"
    # both node roles (system node group: controllers; Karpenter nodes: GPU and agents) may import through every rule
    grants = [json.loads(p["policy"])["Statement"][0] for p in capacity["aws_iam_role_policy"].values()
              if p["name"].startswith("pull-through-")]
    assert len(grants) == 2 * len(want)
    for g in grants:
        assert sorted(g["Action"]) == ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"]
        [res] = g["Resource"]
        assert res.split(":repository/")[1].split("/")[0] in want and res.endswith("/*")


def test_an_image_on_an_undecided_registry_fails_at_synth() -> None:
    from cdktn import App, TerraformStack

    from tierwise.constructs.capacity.image_sources import ImageSources, ImageSourcesProps

    class Key:
        key_arn = "arn:aws:kms:us-east-1:111111111111:key/x"

    stack = TerraformStack(App(outdir="/tmp/tw-images-test"), "s")
    images = ImageSources(stack, "images", key=Key(), props=ImageSourcesProps(
        account_id="111111111111", region="us-east-1", credential_secrets={"docker.io": "ecr-pullthroughcache/d",
                                                                           "ghcr.io": "ecr-pullthroughcache/g"},
        mirrored=("nvcr.io/nvidia/gpu-operator:v25.10.1",), protect=False))
    assert images.image("registry.k8s.io/lws/lws:v0.10.0") == "111111111111.dkr.ecr.us-east-1.amazonaws.com/k8s/lws/lws:v0.10.0"
    assert images.image("vllm/vllm-openai:v0.32.0").endswith("/docker-hub/vllm/vllm-openai:v0.32.0")
    with pytest.raises(ValueError, match="does not decide"):
        images.image("us-central1-docker.pkg.dev/k8s-staging-images/kueue/kueue:release-0.19")
    with pytest.raises(ValueError, match="not in the mirrored images"):
        images.image("nvcr.io/nvidia/cuda:13.0.1-base-ubi9")
