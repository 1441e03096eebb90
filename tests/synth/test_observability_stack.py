"""The observability stack deploys what the observability package generated, and agrees with serving:
Prometheus' Service is the one KEDA queries, its rules and scrape configs are the generated ones, the
snapshot CronJob has list-only RBAC and no AWS identity, and the monitoring namespace is closed by default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tierwise.config import load_environment

pytestmark = pytest.mark.synth
REPO = Path(__file__).resolve().parents[2]
ENVS = ("dev", "prod")


def _stack(synthesized, env: str) -> dict:
    return json.loads((synthesized[env] / "stacks" / f"{env}-observability" / "cdk.tf.json").read_text())


def _objects(doc: dict, kind: str) -> list[dict]:
    return [r["manifest"] for r in doc["resource"].get("kubernetes_manifest", {}).values() if r["manifest"]["kind"] == kind]


@pytest.mark.parametrize("env_name", ENVS)
def test_prometheus_chart_serves_the_url_keda_queries_with_the_generated_config(synthesized, env_name: str) -> None:
    env = load_environment(env_name)
    doc = _stack(synthesized, env_name)
    [release] = doc["resource"]["helm_release"].values()
    assert (release["chart"], release["version"]) == ("prometheus", "27.45.0")
    assert release["repository"] == "https://prometheus-community.github.io/helm-charts"
    assert release["namespace"] == env.serving.monitoring_namespace == "monitoring"
    values = json.loads(release["values"][0])
    assert env.serving.prometheus_url == f"http://{values['server']['fullnameOverride']}.monitoring.svc:{values['server']['service']['servicePort']}"
    generated = yaml.safe_load((REPO / "workloads/observability/generated" / env_name / "prometheus-helm-values.yaml").read_text())
    assert values["serverFiles"] == generated["serverFiles"] and values["extraScrapeConfigs"] == generated["extraScrapeConfigs"]
    assert values["server"]["global"] == generated["server"]["global"]
    for sub in ("alertmanager", "kube-state-metrics", "prometheus-node-exporter", "prometheus-pushgateway"):
        assert values[sub] == {"enabled": False}
    registry = f"{env.account_id}.dkr.ecr.{env.region}.amazonaws.com/quay/"
    assert values["server"]["image"]["repository"] == registry + "prometheus/prometheus"
    assert values["configmapReload"]["prometheus"]["image"]["repository"] == registry + "prometheus-operator/prometheus-config-reloader"
    assert "aws_ecr_pull_through_cache_rule" not in doc["resource"]  # the quay.io rule lives in capacity


@pytest.mark.parametrize("env_name", ENVS)
def test_dashboards_configmap_is_the_generated_one(synthesized, env_name: str) -> None:
    generated = yaml.safe_load((REPO / "workloads/observability/generated" / env_name / "grafana-dashboard-configmap.yaml").read_text())
    [cm] = _objects(_stack(synthesized, env_name), "ConfigMap")
    assert cm["data"] == generated["data"] and cm["metadata"]["labels"]["grafana_dashboard"] == "1"


@pytest.mark.parametrize("env_name", ENVS)
def test_snapshot_cronjob_lists_only_and_has_no_aws_identity(synthesized, env_name: str) -> None:
    doc = _stack(synthesized, env_name)
    [cj] = _objects(doc, "CronJob")
    assert cj["spec"]["schedule"] == "*/5 * * * *" and cj["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [c] = pod["containers"]
    assert "tierwise-report snapshot" in c["args"][0] and "--interval-s 300" in c["args"][0]
    assert c["image"].endswith(":0.1.0") and "${aws_ecr_repository." in c["image"]
    assert pod["automountServiceAccountToken"] is False  # the token is a projected, 10-minute volume
    [repo] = doc["resource"]["aws_ecr_repository"].values()
    assert repo["name"] == "tierwise/observability" and repo["image_tag_mutability"] == "IMMUTABLE"
    [role] = _objects(doc, "ClusterRole")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["nodes", "pods", "namespaces"], "verbs": ["list"]}]
    [binding] = _objects(doc, "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": pod["serviceAccountName"], "namespace": "monitoring"}]
    assert "aws_eks_pod_identity_association" not in doc["resource"] and "aws_iam_role" not in doc["resource"]


@pytest.mark.parametrize("env_name", ENVS)
def test_monitoring_namespace_denies_by_default_and_admits_only_keda(synthesized, env_name: str) -> None:
    pols = {p["metadata"]["name"]: p["spec"] for p in _objects(_stack(synthesized, env_name), "NetworkPolicy")}
    assert pols["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert set(pols) == {"default-deny", "allow-dns", "prometheus", "gpu-usage-snapshot"}
    [ingress] = pols["prometheus"]["ingress"]
    assert ingress["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"] == ["keda"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": 9090}]
    assert "ingress" not in pols["gpu-usage-snapshot"]
    assert [r["ports"] for r in pols["gpu-usage-snapshot"]["egress"]] == [[{"protocol": "TCP", "port": 443}]]
