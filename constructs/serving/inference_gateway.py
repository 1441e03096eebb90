"""`InferenceGateway`: the model plane's Gateway API Inference Extension entry point — NGINX Gateway Fabric (pinned
upstream chart, Inference Extension support on) and one `Gateway` the router sends Tier-1 calls to.

Why NGINX Gateway Fabric: the Inference Extension project lists Istio, Agentgateway and NGINX Gateway Fabric as its
conformant Gateway implementations (site-src/implementations/gateways.md at v1.6.0). NGF routes to `InferencePool`
backends natively (no mesh, no sidecars), is a single Apache-2.0 chart with a values schema, and its images come from
ghcr.io, which the ECR pull-through cache serves; Istio would add a mesh control plane the platform does not otherwise
need, and Agentgateway's Kubernetes chart is not yet packaged at a release we could pin and vendor here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from constructs import Construct

from ..helm_chart import HelmChart, HelmChartProps
from ..kubernetes import KubernetesObject

NGF_VERSION = "2.6.7"
CONTROLLER_NAMESPACE = "nginx-gateway"
RELEASE = "nginx-gateway"
#: Label the Gateway implementation puts on the Gateway's data-plane pods (Gateway API, GEP-1762).
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
#: The control plane's pods (chart selectorLabels) and the port the data-plane agents connect to.
CONTROLLER_LABELS = {"app.kubernetes.io/name": "nginx-gateway-fabric", "app.kubernetes.io/instance": RELEASE}
AGENT_PORT = 8443
LISTENER_PORT = 80


class IImageSources(Protocol):
    def repository(self, upstream_repository: str) -> str: ...


@dataclass(frozen=True)
class InferenceGatewayProps:
    namespace: str
    images: IImageSources
    name: str = "inference-gateway"
    gateway_class: str = "tierwise-inference"
    replicas: int = 2
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)


class InferenceGateway(Construct):
    """Creates the NGINX Gateway Fabric `helm_release`, the `Gateway` (HTTP listener, routes from its own namespace
    only) and, with more than one replica, a PodDisruptionBudget for the data plane."""

    def __init__(self, scope: Construct, id: str, *, props: InferenceGatewayProps) -> None:
        super().__init__(scope, id)
        p = props
        self.props = p
        placement: dict[str, Any] = {"nodeSelector": dict(p.node_selector), "tolerations": list(p.tolerations)}
        repo = p.images.repository
        self.release = HelmChart(self, "controller", props=HelmChartProps(
            release_name=RELEASE, chart="nginx-gateway-fabric", repository="oci://ghcr.io/nginx/charts", version=NGF_VERSION,
            namespace=CONTROLLER_NAMESPACE, values={
                "nginxGateway": {"gatewayClassName": p.gateway_class, "replicas": p.replicas,
                                 "gwAPIInferenceExtension": {"enable": True},
                                 "image": {"repository": repo("ghcr.io/nginx/nginx-gateway-fabric"), "tag": NGF_VERSION},
                                 **placement},
                "nginx": {"replicas": p.replicas, "pod": placement,
                          "image": {"repository": repo("ghcr.io/nginx/nginx-gateway-fabric/nginx"), "tag": NGF_VERSION}},
                "certGenerator": placement,
            })).release
        self.gateway = KubernetesObject(self, "gateway", body={
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": p.name, "namespace": p.namespace},
            "spec": {"gatewayClassName": p.gateway_class, "listeners": [{
                "name": "http", "port": LISTENER_PORT, "protocol": "HTTP",
                "allowedRoutes": {"namespaces": {"from": "Same"}}}]}})
        self.gateway.manifest.node.add_dependency(self.release)
        if p.replicas > 1:
            KubernetesObject(self, "pdb", body={
                "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": p.name, "namespace": p.namespace},
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": self.data_plane_selector}}})

    @property
    def data_plane_selector(self) -> dict[str, str]:
        return {GATEWAY_NAME_LABEL: self.props.name}

    @property
    def url(self) -> str:
        """What the router calls: the Gateway's Service (named `<gateway>-<class>` by NGF) in its namespace."""
        return f"http://{self.props.name}-{self.props.gateway_class}.{self.props.namespace}.svc:{LISTENER_PORT}"
