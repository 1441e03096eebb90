"""Scrape configuration as data: plain Prometheus `kubernetes_sd` jobs (no Prometheus Operator CRDs).

The same `scrape_configs` list feeds either
- the upstream `prometheus-community/prometheus` Helm chart (`helm_values()`: `extraScrapeConfigs`
  plus our recording/alerting rules under `serverFiles`), or
- an Amazon Managed Service for Prometheus (AMP) managed scraper (`amp_scraper_config()`: the
  scraper takes a plain Prometheus config with `global` + `scrape_configs`, base64-encoded in the
  `aws_prometheus_scraper` resource's `scrape_configuration`).

Pod selection follows the serving stack's label conventions (`constructs/serving/pod_defaults.py`):
`app.kubernetes.io/part-of=tierwise`, `app.kubernetes.io/component` in router / rag / guardrails /
model-server, container port named `http`, plus `tierwise.io/{model,pool,team}` → series labels.
NVIDIA's GPU operator runs dcgm-exporter in `gpu-operator` (`app=nvidia-dcgm-exporter`, port
`metrics`, 9400); the Karpenter chart in `kube-system` (`app.kubernetes.io/name=karpenter`, port
`http-metrics`, 8080).
"""

from __future__ import annotations

from typing import Any

from .environment import ObsEnvironment
from .rules import split_rules

SCRAPE_INTERVAL = "15s"


def _pod_labels() -> list[dict[str, Any]]:
    """Relabelling shared by our pod jobs: namespace/pod/model/pool/team as series labels."""
    out: list[dict[str, Any]] = [
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_pod_node_name"], "target_label": "node"},
    ]
    for k, target in (("tierwise_io_model", "model"), ("tierwise_io_pool", "pool"), ("tierwise_io_team", "owner_team")):
        out.append({"source_labels": [f"__meta_kubernetes_pod_label_{k}"], "regex": "(.+)", "target_label": target})
    return out


def _tierwise_job(job: str, component: str, port_name: str = "http", path: str = "/metrics") -> dict[str, Any]:
    return {
        "job_name": job,
        "scrape_interval": SCRAPE_INTERVAL,
        "metrics_path": path,
        "kubernetes_sd_configs": [{"role": "pod"}],
        "relabel_configs": [
            {"source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_part_of",
                               "__meta_kubernetes_pod_label_app_kubernetes_io_component",
                               "__meta_kubernetes_pod_container_port_name"],
             "regex": f"tierwise;{component};{port_name}", "action": "keep"},
            {"source_labels": ["__meta_kubernetes_pod_phase"], "regex": "Pending|Succeeded|Failed", "action": "drop"},
            *_pod_labels(),
        ],
    }


def scrape_configs(env: ObsEnvironment) -> list[dict[str, Any]]:
    jobs = [
        _tierwise_job("tierwise-router", "router"),
        _tierwise_job("tierwise-rag", "rag"),
        _tierwise_job("tierwise-guardrails", "guardrails"),
        _tierwise_job("tierwise-vllm", "model-server"),
        {
            "job_name": "dcgm-exporter",
            "scrape_interval": SCRAPE_INTERVAL,
            "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": ["gpu-operator"]}}],
            "relabel_configs": [
                {"source_labels": ["__meta_kubernetes_pod_label_app", "__meta_kubernetes_pod_container_port_name"],
                 "regex": "nvidia-dcgm-exporter;metrics", "action": "keep"},
                {"source_labels": ["__meta_kubernetes_pod_node_name"], "target_label": "node"},
            ],
            # dcgm-exporter's own pod/namespace labels name the GPU's *consumer*: keep them, not ours.
            "honor_labels": True,
        },
        {
            "job_name": "karpenter",
            "scrape_interval": "30s",
            "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": ["kube-system"]}}],
            "relabel_configs": [
                {"source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name",
                                   "__meta_kubernetes_pod_container_port_name"],
                 "regex": "karpenter;http-metrics", "action": "keep"},
                {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            ],
        },
    ]
    return jobs


def prometheus_config(env: ObsEnvironment, rule_files: list[str]) -> dict[str, Any]:
    """A complete standalone prometheus.yml (what `promtool check config` validates in the tests)."""
    return {"global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": "30s",
                       "external_labels": {"environment": env.name}},
            "rule_files": rule_files, "scrape_configs": scrape_configs(env)}


def helm_values(env: ObsEnvironment, rules: dict[str, Any]) -> dict[str, Any]:
    """Values for prometheus-community/prometheus (chart 27.x): our jobs appended to the chart's own
    Kubernetes jobs via `extraScrapeConfigs`; rules in the chart's `serverFiles` rule files."""
    from .yamlio import dump

    rec, alt = split_rules(rules)
    return {
        "server": {"global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": "30s",
                              "external_labels": {"environment": env.name}},
                   "retention": "15d"},
        "serverFiles": {"recording_rules.yml": rec, "alerting_rules.yml": alt},
        "extraScrapeConfigs": dump(scrape_configs(env)),
    }


def amp_scraper_config(env: ObsEnvironment) -> dict[str, Any]:
    """AMP managed scraper configuration (rules go to the workspace's rule-groups namespace instead)."""
    return {"global": {"scrape_interval": "30s", "external_labels": {"environment": env.name}},
            "scrape_configs": scrape_configs(env)}
