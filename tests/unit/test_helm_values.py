"""The Helm values checker (`tierwise.helm_values`) against the vendored chart files: it must catch what
Helm itself lets through silently (unknown keys, wrong shapes) and what makes a controller exit (embedded
configs, feature gates). No synth here; `tests/synth/test_helm_values.py` walks the real releases."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml

from tierwise.helm_values import CHARTS_DIR, Finding, check_release, chart_default, release_values, vendored_charts


def release(chart: str, version: str, values: dict, namespace: str = "ns", **extra) -> dict:
    return {"chart": chart, "version": version, "namespace": namespace, "values": [json.dumps(values)], **extra}


def paths(findings: list[Finding]) -> list[str]:
    return [f.path for f in findings]


def kueue_config(**over) -> str:
    cfg = yaml.safe_load(chart_default("kueue", "0.19.2", "managerConfig.controllerManagerConfigYaml"))
    cfg.update(over)
    return yaml.safe_dump(cfg)


# -- the generic checks ------------------------------------------------------------------------------
def test_catches_a_dict_where_the_chart_wants_a_string():
    # the shape stacks/platform.py used to pass: Kueue renders this value with `fromYaml`
    bad = release("kueue", "0.19.2", {"managerConfig": {"controllerManagerConfigYaml": {"integrations": {"frameworks": ["pod"]}}}})
    [f] = check_release(bad)
    assert f.path == "managerConfig.controllerManagerConfigYaml"
    assert "is a map but the chart's default is a string" in f.message


def test_catches_an_unknown_key_and_names_the_known_ones():
    bad = release("karpenter", "1.14.1", {"settings": {"clusterName": "c", "interuptionQueue": "q"}})
    [f] = check_release(bad)
    assert f.path == "settings.interuptionQueue" and "unknown key" in f.message and "interruptionQueue" in f.message
    assert check_release(release("karpenter", "1.14.1", {"settings": {"clusterName": "c", "interruptionQueue": "q"}})) == []


def test_unknown_top_level_key_and_unknown_key_under_an_empty_closed_map():
    assert paths(check_release(release("lws", "0.10.0", {"nodeSelecter": {"a": "b"}}))) == ["nodeSelecter"]
    # `service.annotations` is not declared open for karpenter: any key under it is unknown to the checker
    bad = {"service": {"annotationz": {}}, "settings": {"clusterName": "c"}}
    assert paths(check_release(release("karpenter", "1.14.1", bad))) == ["service.annotationz"]


def test_catches_a_value_the_templates_require():
    # templates/deployment.yaml: {{ required "Chart cannot be installed without a valid settings.clusterName!" ... }}
    [f] = check_release(release("karpenter", "1.14.1", {"settings": {"interruptionQueue": "q"}}))
    assert f.path == "settings.clusterName" and "cannot be installed without" in f.message


def test_open_maps_take_any_key_but_keep_their_type():
    ok = release("kueue", "0.19.2", {"controllerManager": {"nodeSelector": {"anything.example/x": "y"}}})
    assert check_release(ok) == []
    bad = release("kueue", "0.19.2", {"controllerManager": {"nodeSelector": ["not", "a", "map"]}})
    assert paths(check_release(bad)) == ["controllerManager.nodeSelector"]


@pytest.mark.parametrize(("values", "path"), [
    ({"replicas": "2"}, "replicas"),                                  # number default
    ({"settings": {"isolatedVPC": "true"}}, "settings.isolatedVPC"),  # boolean default
    ({"tolerations": {"key": "x"}}, "tolerations"),                   # list default
    ({"settings": {"clusterName": {"ref": "x"}}}, "settings.clusterName"),  # string default
])
def test_catches_a_type_that_differs_from_the_chart_default(values, path):
    values = {"settings": {"clusterName": "c", **values.pop("settings", {})}, **values}
    assert paths(check_release(release("karpenter", "1.14.1", values))) == [path]


def test_terraform_references_and_nulls_are_not_judged():
    values = {"replicas": "${var.replicas}", "settings": {"clusterName": "${aws_eks_cluster.x.name}"}, "podLabels": None}
    assert check_release(release("karpenter", "1.14.1", values)) == []


def test_values_documents_merge_in_order_then_set():
    rel = {"chart": "lws", "version": "0.10.0", "values": [json.dumps({"replicaCount": 1, "image": {"manager": {"tag": "a"}}}),
                                                            json.dumps({"image": {"manager": {"tag": "b"}}})],
           "set": [{"name": "nodeSelector.kubernetes\\.io/os", "value": "linux"}]}
    assert release_values(rel) == {"replicaCount": 1, "image": {"manager": {"tag": "b"}},
                                   "nodeSelector": {"kubernetes.io/os": "linux"}}


def test_catches_a_values_schema_violation():
    # a string is the right type for server.podAntiAffinity, but the chart's values.schema.json has an enum
    [f] = check_release(release("prometheus", "27.45.0", {"server": {"podAntiAffinity": "always"}}))
    assert f.path == "server.podAntiAffinity" and f.message.startswith("values.schema.json:")


def test_subchart_values_come_from_the_bundled_subchart():
    ok = release("gpu-operator", "v25.10.1", {"node-feature-discovery": {"image": {"repository": "example/nfd"}}})
    assert check_release(ok) == []
    bad = release("gpu-operator", "v25.10.1", {"node-feature-discovery": {"imag": {}}})
    assert paths(check_release(bad)) == ["node-feature-discovery.imag"]


def test_a_chart_version_that_is_not_vendored_is_a_finding_not_a_pass():
    [f] = check_release(release("kueue", "0.20.0", {}))
    assert "no vendored chart files for kueue 0.20.0" in f.message


# -- Kueue: feature gates and the embedded Configuration ------------------------------------------------------
def test_kueue_feature_gates_against_pkg_features_at_0_19_2():
    def gates(*g):
        return check_release(release("kueue", "0.19.2", {"controllerManager": {"featureGates": list(g)}}))

    [f] = gates({"name": "DynamicResourceAllocation", "enabled": True})  # removed before 0.19
    assert f.path == "controllerManager.featureGates[0].name" and "no feature gate 'DynamicResourceAllocation'" in f.message
    assert gates({"name": "KueueDRAIntegration", "enabled": True}) == []
    # ManagedJobsNamespaceSelectorAlwaysRespected went GA and is locked to true at 0.19
    [locked] = gates({"name": "ManagedJobsNamespaceSelectorAlwaysRespected", "enabled": False})
    assert "locked to True" in locked.message
    assert paths(gates({"name": "PartialAdmission", "enabled": "yes"})) == ["controllerManager.featureGates[0]"]


def test_kueue_config_string_is_checked_against_the_configuration_type():
    def check(text: str) -> list[Finding]:
        return check_release(release("kueue", "0.19.2", {"managerConfig": {"controllerManagerConfigYaml": text}}))

    assert check(kueue_config()) == []
    assert check(kueue_config(resources={"deviceClassMappings": [{"name": "x/y", "deviceClassNames": ["mig.nvidia.com"]}]})) == []
    [typo] = check(kueue_config(resources={"deviceClassMapping": []}))
    assert typo.path == "managerConfig.controllerManagerConfigYaml.resources.deviceClassMapping"
    assert "unknown field of Resources" in typo.message
    [wrong] = check(kueue_config(clientConnection={"qps": "fast"}))
    assert wrong.path.endswith(".clientConnection.qps") and "expected a number" in wrong.message
    [fw] = check(kueue_config(integrations={"frameworks": ["batch/job", "leaderworkerset"]}))
    assert fw.path.endswith("integrations.frameworks[1]")
    [gate] = check(kueue_config(featureGates={"DynamicResourceAllocation": True}))
    assert "no feature gate" in gate.message


def test_kueue_config_must_keep_the_chart_defaults_it_replaces():
    partial = yaml.safe_dump({"apiVersion": "config.kueue.x-k8s.io/v1beta2", "kind": "Configuration",
                              "integrations": {"frameworks": ["batch/job"]}})
    [f] = check_release(release("kueue", "0.19.2", {"managerConfig": {"controllerManagerConfigYaml": partial}}))
    assert "drops" in f.message and "leaderElection" in f.message and "webhook" in f.message
    wrong_api = kueue_config(apiVersion="config.kueue.x-k8s.io/v1beta1")
    [f] = check_release(release("kueue", "0.19.2", {"managerConfig": {"controllerManagerConfigYaml": wrong_api}}))
    assert f.path.endswith(".apiVersion")


# -- GPU operator: the MIG-manager and device-plugin configs its values name ----------------------------------
def gpu_release(mig_default="all-disabled", sharing_default="default") -> dict:
    return release("gpu-operator", "v25.10.1", {
        "migManager": {"config": {"name": "mig", "default": mig_default}},
        "devicePlugin": {"config": {"name": "sharing", "default": sharing_default}}}, namespace="gpu-operator")


def configmap(name: str, data: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "gpu-operator"},
            "data": {k: json.dumps(v) for k, v in data.items()}}


MIG = {"version": "v1", "mig-configs": {"all-disabled": [{"devices": "all", "mig-enabled": False}],
                                        "pool": [{"devices": "all", "mig-enabled": True, "mig-devices": {"3g.40gb": 2}}]}}
SHARING = {"default": {"version": "v1", "flags": {"migStrategy": "none"}},
           "l4": {"version": "v1", "sharing": {"timeSlicing": {"resources": [{"name": "nvidia.com/gpu", "replicas": 4}]}}}}


def test_gpu_operator_configs_pass_when_well_formed():
    assert check_release(gpu_release(), manifests=[configmap("mig", {"config.yaml": MIG}), configmap("sharing", SHARING)]) == []


@pytest.mark.parametrize(("mig", "sharing", "expect"), [
    ({"version": "v1", "mig-configs": {"all-disabled": [{"devices": "all", "mig-enabled": True}]}}, SHARING,
     "missing required field 'mig-devices'"),
    ({**MIG, "mig-configs": {**MIG["mig-configs"], "x": [{"devices": "some", "mig-enabled": False}]}}, SHARING, "'all' or a list"),
    ({"version": "v2", "mig-configs": MIG["mig-configs"]}, SHARING, "needs version: v1"),
    (MIG, {**SHARING, "l4": {"version": "v1", "sharing": {"timeSlicing": {"resources": [{"name": "nvidia.com/gpu", "replicas": 1}]}}}},
     "replicas must be >= 2"),
    (MIG, {**SHARING, "l4": {"version": "v1", "sharing": {"timeSlice": {}}}}, "unknown field of Sharing"),
])
def test_gpu_operator_catches_bad_embedded_configs(mig, sharing, expect):
    found = check_release(gpu_release(), manifests=[configmap("mig", {"config.yaml": mig}), configmap("sharing", sharing)])
    assert any(expect in f.message for f in found), found


def test_gpu_operator_defaults_must_name_a_config_and_the_configmaps_must_exist():
    found = check_release(gpu_release(mig_default="nope", sharing_default="nope"),
                          manifests=[configmap("mig", {"config.yaml": MIG}), configmap("sharing", SHARING)])
    assert sorted(paths(found)) == ["devicePlugin.config.default", "migManager.config.default"]
    assert sorted(paths(check_release(gpu_release(), manifests=[]))) == ["devicePlugin.config.name", "migManager.config.name"]


# -- the vendored files themselves ---------------------------------------------------------------------------
def test_vendored_files_are_the_upstream_blobs_with_licenses():
    sources = json.loads((CHARTS_DIR / "sources.json").read_text())
    assert {(n, s["version"]) for n, s in sources.items()} == set(vendored_charts())
    for name, src in sources.items():
        files = {e["file"] for e in src["files"]}
        assert {"values.yaml", "Chart.yaml"} <= files and "LICENSE" in files, name
        chart_yaml = yaml.safe_load((CHARTS_DIR / name / "Chart.yaml").read_text())
        assert chart_yaml["name"] == name
        for e in src["files"]:
            data = (CHARTS_DIR / name / e["file"]).read_bytes()
            assert hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == e["blob"], f"{name}/{e['file']} was edited"


def test_every_open_map_is_backed_by_its_template():
    for chart in vendored_charts().values():
        contract = yaml.safe_load((chart.folder / "tierwise-contract.yaml").read_text())
        for entry in contract["open"]:
            template = chart.text(entry["template"])
            assert entry["evidence"] in template, f"{chart.name}: {entry['path']} not consumed as quoted"
            assert any(w in entry["evidence"] for w in ("toYaml", "tpl", "range")), entry
            assert f".Values.{entry['path']}" in entry["evidence"], entry
            *parents, last = entry["path"].split(".")
            default = chart.defaults
            for k in parents:
                default = default[k]
            if last not in default and entry.get("commented"):
                # a value values.yaml documents only in a comment (`# modelServers: # REQUIRED`)
                assert f"# {last}:" in chart.text("values.yaml"), f"{chart.name}: {entry['path']} is not documented"
                continue
            assert isinstance(default[last], dict), f"{chart.name}: {entry['path']} is not a map in values.yaml"
