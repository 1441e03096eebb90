"""platform: the cluster-wide controllers and APIs the model plane builds on — Kueue, LeaderWorkerSet,
KEDA (pinned Helm charts matching the vendored CRDs), Gateway API and the Inference Extension CRDs."""

from __future__ import annotations

import yaml
from constructs import Construct

from tierwise.config.slices import PlatformSlice
from tierwise.constructs.helm_chart import HelmChart, HelmChartProps
from tierwise.constructs.platform.crd_bundle import CrdBundle, CrdBundleProps
from tierwise.constructs.platform.team_queue import MIG_RESOURCE
from tierwise.helm_values import chart_default, deep_merge

from .base import InClusterStack
from .capacity import CapacityStack
from .cluster import ClusterStack

KUEUE_VERSION = "0.19.2"
LWS_VERSION = "0.10.0"
KEDA_VERSION = "2.20.2"
GATEWAY_CRDS = [
    "gateway-api/gateway.networking.k8s.io_gatewayclasses.yaml",
    "gateway-api/gateway.networking.k8s.io_gateways.yaml",
    "gateway-api/gateway.networking.k8s.io_httproutes.yaml",
    "gateway-api-inference-extension/inference.networking.k8s.io_inferencepools.yaml",
]


def kueue_manager_config(ours: dict) -> str:
    """`managerConfig.controllerManagerConfigYaml`: the chart renders this YAML *string* with `fromYaml` and it
    replaces the chart's whole default (apiVersion/kind, health, metrics, webhook, leader election, controller
    and client settings), so it is the pinned chart's default config with `ours` merged in (maps merge, other
    values such as the frameworks list replace the default's)."""
    default = yaml.safe_load(chart_default("kueue", KUEUE_VERSION, "managerConfig.controllerManagerConfigYaml"))
    return yaml.safe_dump(deep_merge(default, ours), sort_keys=False)


class PlatformStack(InClusterStack):
    layer = "platform"

    def __init__(self, scope: Construct, env: PlatformSlice, *, cluster: ClusterStack, capacity: CapacityStack) -> None:
        super().__init__(scope, env, cluster=cluster.eks)
        images = capacity.images
        # Images through the ECR caches (tierwise.config.registries). The charts' values.yaml in git name staging
        # images (kueue) or `main` (lws) that their release process rewrites, so the released tag is pinned here.
        keda_registry = {c: dict(zip(("registry", "repository"), images.registry_and_path(f"ghcr.io/kedacore/{r}")))
                         for c, r in (("keda", "keda"), ("metricsApiServer", "keda-metrics-apiserver"),
                                      ("webhooks", "keda-admission-webhooks"))}
        # Kueue counts MIG slices handed out through DRA as one logical resource (DRA support in Kueue's config; its
        # KueueDRAIntegration gate is on by default at 0.19, and an unknown gate would make the manager exit).
        kueue_config = kueue_manager_config({
            "resources": {"deviceClassMappings": [{"name": MIG_RESOURCE, "deviceClassNames": ["mig.nvidia.com"]}]},
            "integrations": {"frameworks": ["batch/job", "leaderworkerset.x-k8s.io/leaderworkerset", "pod", "deployment"]}})
        HelmChart(self, "kueue", props=HelmChartProps(
            release_name="kueue", chart="kueue", repository="oci://registry.k8s.io/kueue/charts", version=KUEUE_VERSION,
            namespace="kueue-system",
            values={"controllerManager": {**env.system.helm_values(),
                                          "manager": {"image": {"repository": images.repository("registry.k8s.io/kueue/kueue"),
                                                                "tag": f"v{KUEUE_VERSION}"}}},
                    "managerConfig": {"controllerManagerConfigYaml": kueue_config}}))
        HelmChart(self, "lws", props=HelmChartProps(
            release_name="lws", chart="lws", repository="oci://registry.k8s.io/lws/charts", version=LWS_VERSION,
            namespace="lws-system", values={**env.system.helm_values(), "image": {"manager": {
                "repository": images.repository("registry.k8s.io/lws/lws"), "tag": f"v{LWS_VERSION}"}}}))
        HelmChart(self, "keda", props=HelmChartProps(
            release_name="keda", chart="keda", repository="https://kedacore.github.io/charts", version=KEDA_VERSION,
            namespace="keda", values={**env.system.helm_values(), "image": {
                c: {**reg, "tag": KEDA_VERSION} for c, reg in keda_registry.items()}}))
        CrdBundle(self, "gateway-crds", props=CrdBundleProps(files=GATEWAY_CRDS))
