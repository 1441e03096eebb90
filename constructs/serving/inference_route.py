"""`InferenceRoute`: a Gateway API Inference Extension InferencePool over one model's servers, and the
HTTPRoute that sends that model's traffic on the inference gateway to it."""

from __future__ import annotations

from dataclasses import dataclass, field

from constructs import Construct

from ..kubernetes import KubernetesObject


@dataclass(frozen=True)
class InferenceRouteProps:
    model: str
    namespace: str
    #: Labels of the model server pods (exactly the pods the pool load-balances).
    pod_labels: dict[str, str]
    target_port: int
    #: Gateway the route attaches to (in `namespace`).
    gateway_name: str = "inference-gateway"
    #: Endpoint picker Service (the Inference Extension's EPP) and its gRPC port.
    endpoint_picker: str = ""
    endpoint_picker_port: int = 9002
    labels: dict[str, str] = field(default_factory=dict)


class InferenceRoute(Construct):
    """Creates one `inference.networking.k8s.io/v1` InferencePool and one `gateway.networking.k8s.io/v1`
    HTTPRoute matching the path prefix `/<model>/` (rewritten to `/`), backed by the pool."""

    def __init__(self, scope: Construct, id: str, *, props: InferenceRouteProps) -> None:
        super().__init__(scope, id)
        p = props
        if not p.pod_labels:
            raise ValueError(f"InferenceRoute {p.model}: pod_labels must select the model server pods")
        name = f"vllm-{p.model}"
        epp = p.endpoint_picker or f"{name}-epp"
        self.pool = KubernetesObject(self, "pool", body={
            "apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
            "metadata": {"name": name, "namespace": p.namespace, "labels": dict(p.labels)},
            "spec": {"selector": {"matchLabels": dict(p.pod_labels)}, "targetPorts": [{"number": p.target_port}],
                     "endpointPickerRef": {"name": epp, "port": {"number": p.endpoint_picker_port}, "failureMode": "FailClose"}}})
        self.route = KubernetesObject(self, "route", body={
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": p.namespace, "labels": dict(p.labels)},
            "spec": {
                "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": p.gateway_name}],
                "rules": [{
                    "matches": [{"path": {"type": "PathPrefix", "value": f"/{p.model}/"}}],
                    "filters": [{"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}}],
                    "backendRefs": [{"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": name}],
                    "timeouts": {"request": "300s"},
                }],
            }})
        self.route.manifest.node.add_dependency(self.pool.manifest)
