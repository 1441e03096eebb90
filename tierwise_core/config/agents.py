"""The `agents:` section: one entry per agent gives it an identity, its reach, a queue, scaling, state and budget.

An agent belongs to one team and runs in one of that team's namespaces. Everything it may touch is
declared here and nothing else is granted: in-cluster tool services (NetworkPolicy peers), external
hosts (through the firewall allowlist, so each must be on `network.egress_allowlist`), AWS actions on
named resources (its Pod Identity role), and models it may call through the router (its router key).
Cross-field rules against teams, models and the allowlist run in `check_agents` (environment.py), called by
the Environment validator, so a bad entry fails at load time with its YAML path.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Union

from pydantic import Field, field_validator, model_validator

from .base import Name, Replicas, Strict

AgentImage = Annotated[str, Field(pattern=r"^[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)+:[A-Za-z0-9._-]+(@sha256:[0-9a-f]{64})?$",
                                  description="registry/repository:tag, optionally pinned @sha256 digest")]
IAM_ACTION = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9]+$")
ARN = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12})?:.+$")
#: Actions that reach a model directly; agents call models only through the router (TW-AGENT-002).
MODEL_ACTION_PREFIXES = ("bedrock:", "bedrock-runtime:", "sagemaker:InvokeEndpoint")
#: Router principal names are `<team>:agent:<agent>`; the router caps names at 63 characters.
ROUTER_NAME_MAX = 63


# --------------------------------------------------------------------------------------------
# Tools: what an agent may reach
class ServiceTool(Strict):
    """An in-cluster HTTP service: the agent gets a NetworkPolicy egress rule to its pods on `port`."""

    kind: Literal["service"]
    name: Name
    namespace: Name
    service: Name
    port: Annotated[int, Field(ge=1, le=65535)]
    #: Labels of the service's pods (the NetworkPolicy peer); `app.kubernetes.io/name: <service>` when omitted.
    pod_labels: dict[str, str] = Field(default_factory=dict)

    @property
    def selector(self) -> dict[str, str]:
        return dict(self.pod_labels) or {"app.kubernetes.io/name": self.service}

    @property
    def url(self) -> str:
        return f"http://{self.service}.{self.namespace}.svc:{self.port}"


class ExternalTool(Strict):
    """A host outside the cluster, reached through the egress firewall (must be on network.egress_allowlist)."""

    kind: Literal["external"]
    name: Name
    fqdn: Annotated[str, Field(pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")]
    port: Literal[443] = 443


class AwsTool(Strict):
    """AWS API actions on named resources, granted to the agent's own role and nothing more."""

    kind: Literal["aws"]
    name: Name
    actions: Annotated[list[str], Field(min_length=1)]
    resources: Annotated[list[str], Field(min_length=1)]

    @field_validator("actions")
    @classmethod
    def _actions(cls, v: list[str]) -> list[str]:
        for a in v:
            if not IAM_ACTION.match(a):
                raise ValueError(f"action {a!r} must be one named action like 's3:GetObject' (no wildcards)")
            if a.startswith(MODEL_ACTION_PREFIXES):
                raise ValueError(f"action {a!r} calls a model directly; agents reach models only through the router "
                                 "(list the model under `models:` instead)")
        return sorted(set(v))

    @field_validator("resources")
    @classmethod
    def _resources(cls, v: list[str]) -> list[str]:
        for r in v:
            tail = r.split(":", 5)[-1].removesuffix("/*")
            if not ARN.match(r) or not tail or "*" in tail or "?" in tail:
                raise ValueError(f"resource {r!r} must be a named ARN (a trailing '/*' on an S3 prefix is fine; '*' is not)")
        return sorted(set(v))


Tool = Annotated[Union[ServiceTool, ExternalTool, AwsTool], Field(discriminator="kind")]


# --------------------------------------------------------------------------------------------
class AgentQueue(Strict):
    """The agent's SQS work queue (KMS-encrypted) and its dead-letter queue."""

    #: Time one receive hides a message; longer than one step of the agent, so a live agent is not raced.
    visibility_timeout_s: Annotated[int, Field(ge=10, le=43200)] = 300
    #: Receives before a message moves to the DLQ (a poison task stops being retried).
    max_receives: Annotated[int, Field(ge=1, le=1000)] = 5
    retention_days: Annotated[int, Field(ge=1, le=14)] = 4
    #: KEDA target: visible messages per replica before another replica is added.
    messages_per_replica: Annotated[int, Field(ge=1, le=10000)] = 5


class DynamoCheckpoint(Strict):
    """One DynamoDB table per agent (PAY_PER_REQUEST, KMS, point-in-time recovery); the role reaches only it."""

    store: Literal["dynamodb"] = "dynamodb"
    #: Checkpoints of finished tasks expire (DynamoDB TTL on `expires_at`) after this many days.
    ttl_days: Annotated[int, Field(ge=1, le=365)] = 14


class S3Checkpoint(Strict):
    """A key prefix in an existing bucket; the role reaches only `<bucket>/<prefix>/*`."""

    store: Literal["s3"]
    bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*$")]


Checkpoint = Annotated[Union[DynamoCheckpoint, S3Checkpoint], Field(discriminator="store")]


class AgentReplicas(Replicas):
    #: 0: KEDA scales the agent to zero while its queue is empty (the default for queue workers).
    min: Annotated[int, Field(ge=0)] = 0
    max: Annotated[int, Field(ge=1, le=1000)] = 4


class Agent(Strict):
    name: Name
    team: Name
    #: One of the team's namespaces; the team's first namespace when omitted.
    namespace: Name | None = None
    image: AgentImage
    #: Models (catalog names or Bedrock ids) the agent may call through the router; a subset of the team's.
    models: Annotated[list[str], Field(min_length=1)]
    tools: list[Tool] = Field(default_factory=list)
    #: Tools (by name) whose every call waits for a human approval through the guardrails escalation API.
    approval_required: list[Name] = Field(default_factory=list)
    queue: AgentQueue = AgentQueue()
    replicas: AgentReplicas = AgentReplicas()
    checkpoint: Checkpoint = DynamoCheckpoint()
    #: Router budget of the agent's own key, carved out of its team's `tokens_per_day`.
    tokens_per_day: Annotated[int, Field(gt=0)] = 200_000
    #: Optional USD cap per month on the agent's key (at most the team's monthly budget).
    monthly_budget_usd: Annotated[float, Field(gt=0)] | None = None
    #: Secret (created at deploy time, never in YAML) in the agent's namespace holding its router key under `api-key`.
    router_key_secret: Name | None = None
    cpu: Annotated[str, Field(pattern=r"^\d+(m)?$")] = "250m"
    memory_mib: Annotated[int, Field(ge=64, le=65536)] = 512

    @model_validator(mode="after")
    def _local(self) -> Agent:
        names = [t.name for t in self.tools]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"agent {self.name!r}: tool names must be unique, {dupes} repeat")
        for t in self.approval_required:
            if t not in names:
                raise ValueError(f"agent {self.name!r}: approval_required names tool {t!r}, which is not declared under "
                                 f"tools ({', '.join(names) or 'none'})")
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"agent {self.name!r}: models has duplicates")
        if len(self.router_principal) > ROUTER_NAME_MAX:
            raise ValueError(f"agent {self.name!r}: router principal {self.router_principal!r} is longer than "
                             f"{ROUTER_NAME_MAX} characters; shorten the agent or team name")
        return self

    # -- derived ---------------------------------------------------------------------------------
    @property
    def router_principal(self) -> str:
        """The agent's entry in the router config: its own key, budget and models, attributed to its team."""
        return f"{self.team}:agent:{self.name}"

    @property
    def key_secret(self) -> str:
        return self.router_key_secret or f"agent-{self.name}-router-key"

    def tools_of(self, kind: str) -> list:
        return [t for t in self.tools if t.kind == kind]


class AgentPool(Strict):
    """The dedicated CPU Karpenter NodePool every agent runs on (tainted: only agents land there)."""

    instance_categories: Annotated[list[Literal["c", "m", "r", "t"]], Field(min_length=1)] = ["c", "m"]
    capacity_types: Annotated[list[Literal["spot", "on-demand"]], Field(min_length=1)] = ["on-demand"]
    #: Hard ceilings on what the pool may launch (the cost gate multiplies these by price).
    cpu_limit: Annotated[int, Field(ge=1, le=10000)] = 64
    memory_limit_gib: Annotated[int, Field(ge=1, le=100000)] = 256
    consolidate_after: Annotated[str, Field(pattern=r"^\d+(s|m|h)$")] = "5m"
    disruption_budget_nodes: Annotated[str, Field(pattern=r"^(\d+%|\d+)$")] = "10%"
    disk_gib: Annotated[int, Field(ge=20, le=16384)] = 50


# --------------------------------------------------------------------------------------------
def fqdn_allowed(fqdn: str, allowlist: list[str]) -> bool:
    """Whether the firewall allowlist admits `fqdn`: an exact entry, or a `.domain` / `*.domain` entry above it."""
    for entry in allowlist:
        if entry.startswith((".", "*.")):
            base = entry.split(".", 1)[1] if entry.startswith("*.") else entry[1:]
            if fqdn == base or fqdn.endswith("." + base):
                return True
        elif fqdn == entry:
            return True
    return False


def cpu_millis(cpu: str) -> int:
    """A Kubernetes CPU quantity (`250m`, `2`) in millicores."""
    return int(cpu[:-1]) if cpu.endswith("m") else int(cpu) * 1000
