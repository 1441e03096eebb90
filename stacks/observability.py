"""observability: in-cluster Prometheus with the scrape configs and rules the observability package generated
for this environment, the Grafana dashboards ConfigMap, and the GPU-usage snapshot CronJob of the cost report.

The generated files (`workloads/observability/generated/<env>/` of this checkout, or the folder the caller names:
`ObservabilitySlice.generated_dir`, never relative to the working directory) are read as data: this stack never
imports the observability package; a missing file fails with its path and the command that generates it.
Prometheus is the pinned upstream `prometheus-community/prometheus` chart (plain scrape
configs and rule files in its values; no Operator CRDs). Its server Service is named and numbered after
`serving.prometheus_url`, the URL KEDA's Prometheus triggers query. Images come through ECR pull-through caches
(quay.io) and this stack's ECR repository (the observability image), so nodes need no egress beyond AWS.
"""

from __future__ import annotations

import yaml
from constructs import Construct

from tierwise.config.slices import ObservabilitySlice
from tierwise.constructs.encryption_key import EncryptionKey, EncryptionKeyProps
from tierwise.helm_values import deep_merge
from tierwise.constructs.helm_chart import HelmChart, HelmChartProps
from tierwise.constructs.kubernetes import KubernetesObject
from tierwise.constructs.observability.gpu_usage_snapshot import GpuUsageSnapshot, GpuUsageSnapshotProps
from tierwise.constructs.platform.team_namespace import TeamNamespace, TeamNamespaceProps
from tierwise.constructs.serving.ecr_repository import EcrRepository, EcrRepositoryProps
from tierwise.constructs.serving.network_policy import NetworkPolicy, NetworkPolicyProps, cidr, namespaces, pods, tcp
from tierwise.constructs.serving.vllm_model_server import PORT as VLLM_PORT

from .base import PLATFORM_COST_CENTER, SHARED_TEAM, InClusterStack
from .capacity import CapacityStack
from .cluster import ClusterStack

PROMETHEUS_CHART_VERSION = "27.45.0"
PROMETHEUS_RELEASE = "prometheus"
#: Labels the chart puts on the server pods (`prometheus.server.matchLabels`).
PROMETHEUS_SERVER_LABELS = {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/instance": PROMETHEUS_RELEASE,
                            "app.kubernetes.io/component": "server"}
PROMETHEUS_CONTAINER_PORT = 9090
KEDA_NAMESPACE = "keda"  # platform stack: KEDA's operator queries Prometheus for the ScaledObjects' triggers
#: Scrape targets of the generated jobs (`workloads/observability/tierwise_observability/scrape.py`) outside serving.
DCGM = ("gpu-operator", {"app": "nvidia-dcgm-exporter"}, 9400)
KARPENTER = ("kube-system", {"app.kubernetes.io/name": "karpenter"}, 8080)


class ObservabilityStack(InClusterStack):
    layer = "observability"

    def __init__(self, scope: Construct, env: ObservabilitySlice, *, cluster: ClusterStack, capacity: CapacityStack) -> None:
        super().__init__(scope, env, cluster=cluster.eks)
        ob = env.observability
        ns = env.monitoring_namespace
        service, service_port = env.prometheus.name, env.prometheus.port
        values = yaml.safe_load(env.generated_file("prometheus-helm-values.yaml").read_text())
        dashboards_file = env.generated_file("grafana-dashboard-configmap.yaml")
        dashboards = yaml.safe_load(dashboards_file.read_text())

        namespace = TeamNamespace(self, "namespace", props=TeamNamespaceProps(
            name=ns, team=SHARED_TEAM, cost_center=PLATFORM_COST_CENTER, pod_security="restricted"))

        # -- images: Prometheus from quay.io through ECR; our tool image from our own repository ------------------
        images = capacity.images  # quay.io through the capacity stack's ECR cache (tierwise.config.registries)
        key = EncryptionKey(self, "key", props=EncryptionKeyProps(
            alias=f"{env.prefix}/observability", account_id=env.account_id, region=env.region,
            protect=env.protect_stateful, description="observability: ECR repository of the tierwise-report image"))
        repo = EcrRepository(self, "image", key=key, props=EcrRepositoryProps(
            name="tierwise/observability", protect=env.protect_stateful))

        # -- Prometheus --------------------------------------------------------------------------------------
        hardened = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
        ours = {
            "alertmanager": {"enabled": False}, "kube-state-metrics": {"enabled": False},
            "prometheus-node-exporter": {"enabled": False}, "prometheus-pushgateway": {"enabled": False},
            "configmapReload": {"prometheus": {"image": {"repository": images.repository(
                "quay.io/prometheus-operator/prometheus-config-reloader")},
                "containerSecurityContext": hardened}},
            "server": {
                "fullnameOverride": service,
                "image": {"repository": images.repository("quay.io/prometheus/prometheus")},
                "service": {"servicePort": service_port},
                "persistentVolume": {"enabled": False},
                "emptyDir": {"sizeLimit": f"{ob.prometheus_storage_gib}Gi"},
                "resources": {"requests": {"cpu": ob.prometheus_cpu, "memory": f"{ob.prometheus_memory_mib}Mi"},
                              "limits": {"cpu": ob.prometheus_cpu, "memory": f"{ob.prometheus_memory_mib}Mi"}},
                "containerSecurityContext": hardened,
                "podLabels": {"tierwise.io/team": SHARED_TEAM},
                **env.system.helm_values(),
            },
        }
        chart = HelmChart(self, "prometheus", props=HelmChartProps(
            release_name=PROMETHEUS_RELEASE, chart="prometheus", repository="https://prometheus-community.github.io/helm-charts",
            version=PROMETHEUS_CHART_VERSION, namespace=ns, create_namespace=False, values=deep_merge(values, ours)))
        chart.release.node.add_dependency(namespace.namespace.manifest)

        # -- dashboards: the generated ConfigMap, as generated (Grafana's sidecar picks up grafana_dashboard=1) --
        if dashboards["metadata"].get("namespace") != ns:
            raise ValueError(f"{dashboards_file} targets namespace "
                             f"{dashboards['metadata'].get('namespace')!r}, not {ns!r}: regenerate it")
        cm = KubernetesObject(self, "dashboards", body=dashboards)
        cm.manifest.node.add_dependency(namespace.namespace.manifest)

        # -- GPU-usage snapshots for the cost report --------------------------------------------------------
        snap = GpuUsageSnapshot(self, "gpu-usage-snapshot", props=GpuUsageSnapshotProps(
            namespace=ns, image=repo.image(ob.image_tag), every_minutes=ob.snapshot_every_minutes,
            node_selector=env.system.node_selector, tolerations=env.system.tolerations))
        snap.cron_job.manifest.node.add_dependency(namespace.namespace.manifest)

        # -- network: exactly the flows Prometheus and the snapshot job need ----------------------------------
        vpc = env.vpc_cidr
        api_server = {"to": [cidr(vpc)], "ports": tcp(443)}  # the EKS API (control-plane ENIs in the VPC)
        pol = Construct(self, "network-policies")
        NetworkPolicy(pol, "prometheus", props=NetworkPolicyProps(
            name="prometheus", namespace=ns, pod_selector=PROMETHEUS_SERVER_LABELS,
            ingress=[{"from": [namespaces([KEDA_NAMESPACE])], "ports": tcp(PROMETHEUS_CONTAINER_PORT)}],
            egress=[api_server,
                    {"to": [pods({"app.kubernetes.io/part-of": "tierwise"}, namespace=env.serving_namespace)],
                     "ports": tcp(env.service_port, VLLM_PORT)},
                    {"to": [pods(DCGM[1], namespace=DCGM[0])], "ports": tcp(DCGM[2])},
                    {"to": [pods(KARPENTER[1], namespace=KARPENTER[0])], "ports": tcp(KARPENTER[2])}]))
        NetworkPolicy(pol, "gpu-usage-snapshot", props=NetworkPolicyProps(
            name="gpu-usage-snapshot", namespace=ns, pod_selector=snap.selector, egress=[api_server]))
        for p in pol.node.children:
            p.manifest.node.add_dependency(namespace.namespace.manifest)
