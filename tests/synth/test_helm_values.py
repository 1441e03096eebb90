"""Values truth: every `helm_release` in every synthesized environment passes `tierwise.helm_values`
(known keys, chart-default types, values.schema.json, embedded configs) against the vendored chart files."""

from __future__ import annotations

import json

import pytest
import yaml

from tierwise.helm_values import check_release, chart_default, iter_helm_releases, vendored_charts

pytestmark = pytest.mark.synth


@pytest.fixture(scope="module")
def releases(synthesized) -> list[tuple[str, str, str, dict, list[dict]]]:
    return [(env, stack, addr, rel, manifests) for env, out in sorted(synthesized.items())
            for stack, addr, rel, manifests in iter_helm_releases(out)]


def test_every_helm_release_matches_its_vendored_chart(releases):
    failures = [f"{stack} {addr} ({rel['chart']} {rel['version']}) {f}"
                for _env, stack, addr, rel, manifests in releases for f in check_release(rel, manifests=manifests)]
    assert not failures, "\n".join(failures)


def test_the_walk_covers_every_vendored_chart_in_dev_and_prod(releases):
    # every chart the stacks pin is vendored, and nothing vendored is stale (some charts, like the inference
    # Gateway's, are used by prod only)
    used = {(rel["chart"], rel["version"]) for _e, _s, _a, rel, _m in releases}
    assert used == set(vendored_charts()), f"releases {sorted(used)} vs vendored {sorted(vendored_charts())}"
    for env in ("dev", "prod"):
        assert {(rel["chart"], rel["version"]) for e, _s, _a, rel, _m in releases if e == env} <= set(vendored_charts())


def test_kueue_gets_the_chart_default_config_with_our_additions_and_no_removed_gate(releases):
    for env, _stack, _addr, rel, _m in releases:
        if rel["chart"] != "kueue":
            continue
        values = yaml.safe_load(rel["values"][0])
        gates = [g["name"] for g in values["controllerManager"].get("featureGates", [])]
        assert "DynamicResourceAllocation" not in gates, env
        text = values["managerConfig"]["controllerManagerConfigYaml"]
        assert isinstance(text, str), env
        cfg = yaml.safe_load(text)
        default = yaml.safe_load(chart_default("kueue", rel["version"], "managerConfig.controllerManagerConfigYaml"))
        for key in set(default) - {"integrations"}:
            assert cfg[key] == default[key], f"{env}: {key} differs from the chart default"
        assert cfg["resources"]["deviceClassMappings"] == [
            {"name": "tierwise.io/mig-slices", "deviceClassNames": ["mig.nvidia.com"]}], env


def test_gpu_operator_configmaps_were_found_and_checked(releases):
    for env, _stack, _addr, rel, manifests in releases:
        if rel["chart"] != "gpu-operator":
            continue
        values = json.loads(rel["values"][0])
        names = {m["metadata"]["name"] for m in manifests if m["kind"] == "ConfigMap"}
        assert {values["migManager"]["config"]["name"], values["devicePlugin"]["config"]["name"]} <= names, env
