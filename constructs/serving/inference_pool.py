"""`ModelInferencePool`: one catalog model's `InferencePool` and its endpoint picker (EPP), from the upstream
`inferencepool` chart of the Gateway API Inference Extension, configured for vLLM.

The picker scrapes each replica's vLLM `/metrics` (queue depth `vllm:num_requests_waiting`, KV-cache use, running
LoRA adapters: the chart's default plugins for `modelServerType: vllm`) and tells the Gateway which replica gets the
request. `failureMode: FailOpen` (the chart default) keeps traffic flowing, unbalanced, while a picker restarts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from constructs import Construct

from ..helm_chart import HelmChart, HelmChartProps

INFERENCEPOOL_CHART_VERSION = "v1.5.0"
EPP_PORT = 9002
#: The label the chart puts on a pool's picker pods (epplib selectorLabels, parent InferencePool mode).
PICKER_LABEL = "inferencepool"


class IImageSources(Protocol):
    def registry_and_path(self, upstream_repository: str) -> tuple[str, str]: ...


@dataclass(frozen=True)
class ModelInferencePoolProps:
    #: Pool (and release) name: the catalog model's name.
    name: str
    namespace: str
    #: Labels that select exactly this model's vLLM pods.
    model_server_labels: dict[str, str]
    images: IImageSources
    target_port: int = 8000
    replicas: int = 1
    cpu: str = "500m"
    memory_mib: int = 1024
    node_affinity: dict[str, Any] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)


class ModelInferencePool(Construct):
    """Creates one `helm_release` of the `inferencepool` chart: the InferencePool, its EPP Deployment, Service,
    ConfigMap and RBAC."""

    def __init__(self, scope: Construct, id: str, *, props: ModelInferencePoolProps) -> None:
        super().__init__(scope, id)
        p = props
        self.props = p
        registry, repository = p.images.registry_and_path("registry.k8s.io/gateway-api-inference-extension/epp")
        self.release = HelmChart(self, "pool", props=HelmChartProps(
            release_name=p.name, chart="inferencepool", repository="oci://registry.k8s.io/gateway-api-inference-extension/charts",
            version=INFERENCEPOOL_CHART_VERSION, namespace=p.namespace, create_namespace=False, values={
                "inferencePool": {"targetPorts": [{"number": p.target_port}], "modelServerType": "vllm",
                                  "modelServers": {"matchLabels": dict(p.model_server_labels)}},
                "inferenceExtension": {
                    "replicas": p.replicas,
                    "image": {"registry": registry, "repository": repository, "tag": INFERENCEPOOL_CHART_VERSION,
                              "pullPolicy": "IfNotPresent"},
                    "resources": {"requests": {"cpu": p.cpu, "memory": f"{p.memory_mib}Mi"},
                                  "limits": {"memory": f"{p.memory_mib}Mi"}},
                    **({"affinity": p.node_affinity} if p.node_affinity else {}),
                    **({"tolerations": list(p.tolerations)} if p.tolerations else {}),
                },
                "provider": {"name": "none"},
            })).release

    @property
    def picker_selector(self) -> dict[str, str]:
        return {PICKER_LABEL: f"{self.props.name}-epp"}
