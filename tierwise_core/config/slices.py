"""What each stack receives: one typed, frozen slice of the environment per layer, built here and only here.

A stack sees the sections and derived facts its resources are made of and nothing else, so reading a
stack tells you which parts of the environment can change it. Every slice carries the frame every stack
needs (`StackSlice`: name, account, region, state backend, tags, whether stateful resources are
protected); `Slices.of(env)` builds all of them (`tierwise.app.build_app` is the one caller).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from .agents import Agent, AgentPool
from .catalog import CatalogModel
from .environment import Environment
from .infra import Cluster, ImageSources, Network, Placement, StateBackend
from .pools import GpuPool
from .serving import Observability, ServiceEndpoint, Serving
from .teams import Bedrock, Platform, Team
from .training import Training

#: The checkout this package lives in (editable install: the symlinks resolve into it). Not the CWD.
REPO_ROOT = Path(__file__).resolve().parents[2]
#: Where `tierwise-observability generate` writes one folder per environment.
OBSERVABILITY_GENERATED = Path("workloads") / "observability" / "generated"


def _by_name(items) -> Mapping:
    return MappingProxyType({i.name: i for i in items})


class MissingGeneratedFile(ValueError, FileNotFoundError):
    """A file the observability package generates is missing: a forked environment was never generated. A
    ValueError, so `tierwise synth` reports it like any other bad input (exit 2, one message)."""


@dataclass(frozen=True)
class StackSlice:
    """The frame of every stack: stack id and state key (`<name>-<layer>`), provider region/account, default tags."""

    name: str
    account_id: str
    region: str
    state: StateBackend
    tags: Mapping[str, str]
    protect_stateful: bool

    @property
    def prefix(self) -> str:
        """`tierwise-<env>`: the name prefix of this environment's resources (and the EKS cluster's name)."""
        return f"tierwise-{self.name}"


@dataclass(frozen=True)
class NetworkSlice(StackSlice):
    network: Network
    availability_zones: tuple[str, ...]


@dataclass(frozen=True)
class ClusterSlice(StackSlice):
    cluster: Cluster
    vpc_cidr: str


@dataclass(frozen=True)
class CapacitySlice(StackSlice):
    gpu_pools: tuple[GpuPool, ...]
    images: ImageSources
    system: Placement


@dataclass(frozen=True)
class PlatformSlice(StackSlice):
    system: Placement


@dataclass(frozen=True)
class TenancySlice(StackSlice):
    gpu_pools: Mapping[str, GpuPool]
    teams: tuple[Team, ...]
    #: MIG profiles the catalog's model servers claim (one ResourceClaimTemplate each in the serving namespace).
    mig_profiles: tuple[str, ...]
    serving_namespace: str


@dataclass(frozen=True)
class GovernanceSlice(StackSlice):
    teams: tuple[Team, ...]
    platform: Platform
    bedrock: Bedrock
    bedrock_invoke_arns: tuple[str, ...]


@dataclass(frozen=True)
class ServingSlice(StackSlice):
    serving: Serving
    models: tuple[CatalogModel, ...]
    gpu_pools: Mapping[str, GpuPool]
    teams: tuple[Team, ...]
    bedrock: Bedrock
    bedrock_invoke_arns: tuple[str, ...]
    agents: tuple[Agent, ...]
    vpc_cidr: str
    system: Placement

    @property
    def client_namespaces(self) -> list[str]:
        """Every team namespace: the router's callers."""
        return [ns for t in self.teams for ns in t.namespaces]


@dataclass(frozen=True)
class TrainingSlice(StackSlice):
    training: Training
    models: Mapping[str, CatalogModel]
    gpu_pools: Mapping[str, GpuPool]
    teams: Mapping[str, Team]
    vpc_cidr: str

    def namespace(self, pipeline) -> str:
        return self.teams[pipeline.team].workload_namespace(pipeline.namespace)


@dataclass(frozen=True)
class ObservabilitySlice(StackSlice):
    observability: Observability
    monitoring_namespace: str
    prometheus: ServiceEndpoint
    serving_namespace: str
    service_port: int
    vpc_cidr: str
    system: Placement
    #: `workloads/observability/generated/<env>/` of this checkout (or what the caller passed).
    generated_dir: Path

    def generated_file(self, name: str) -> Path:
        """One generated file; a missing one fails with its path and the command that writes it."""
        path = self.generated_dir / name
        if not path.is_file():
            raise MissingGeneratedFile(
                f"{path} not found: the observability stack deploys the files the observability package generates for "
                f"environment {self.name!r}. Run `make generate-observability` (`tierwise export observability` "
                f"for every environment, then `tierwise-observability generate` writes {OBSERVABILITY_GENERATED}/<env>/), "
                "then synthesize again")
        return path


@dataclass(frozen=True)
class AgentsSlice(StackSlice):
    agents: tuple[Agent, ...]
    agent_pool: AgentPool
    teams: Mapping[str, Team]
    vpc_cidr: str
    router: ServiceEndpoint
    guardrails: ServiceEndpoint

    def namespace(self, agent: Agent) -> str:
        return self.teams[agent.team].workload_namespace(agent.namespace)


@dataclass(frozen=True)
class Slices:
    network: NetworkSlice
    cluster: ClusterSlice
    capacity: CapacitySlice
    platform: PlatformSlice
    tenancy: TenancySlice
    governance: GovernanceSlice
    serving: ServingSlice
    training: TrainingSlice
    observability: ObservabilitySlice
    agents: AgentsSlice

    @classmethod
    def of(cls, env: Environment, *, observability_generated: Path | None = None) -> Slices:
        """Every stack's slice of `env`. `observability_generated` is the folder holding `<env>/` generated
        observability files; by default this checkout's `workloads/observability/generated/` (never the CWD)."""
        frame = {"name": env.name, "account_id": env.account_id, "region": env.region, "state": env.state,
                 "tags": MappingProxyType(dict(env.tags)), "protect_stateful": env.protect_stateful}
        system = env.cluster.system_placement
        vpc = env.network.vpc_cidr
        pools, teams, teams_by_name = _by_name(env.gpu_pools), tuple(env.teams), _by_name(env.teams)
        arns = tuple(env.bedrock_invoke_arns)  # resolves every Bedrock id: once
        sv = env.serving
        gen_root = observability_generated if observability_generated is not None else REPO_ROOT / OBSERVABILITY_GENERATED
        return cls(
            network=NetworkSlice(**frame, network=env.network, availability_zones=tuple(env.availability_zones)),
            cluster=ClusterSlice(**frame, cluster=env.cluster, vpc_cidr=vpc),
            capacity=CapacitySlice(**frame, gpu_pools=tuple(env.gpu_pools), images=env.images, system=system),
            platform=PlatformSlice(**frame, system=system),
            tenancy=TenancySlice(**frame, gpu_pools=pools, teams=teams, serving_namespace=sv.namespace,
                                 mig_profiles=tuple(sorted({m.gpu.profile for m in env.models if m.gpu.kind == "mig"}))),
            governance=GovernanceSlice(**frame, teams=teams, platform=env.platform, bedrock=env.bedrock,
                                       bedrock_invoke_arns=arns),
            serving=ServingSlice(**frame, serving=sv, models=tuple(env.models), gpu_pools=pools, teams=teams,
                                 bedrock=env.bedrock, bedrock_invoke_arns=arns,
                                 agents=tuple(env.agents), vpc_cidr=vpc, system=system),
            training=TrainingSlice(**frame, training=env.training, models=_by_name(env.models), gpu_pools=pools,
                                   teams=teams_by_name, vpc_cidr=vpc),
            observability=ObservabilitySlice(
                **frame, observability=env.observability, monitoring_namespace=sv.monitoring_namespace,
                prometheus=sv.prometheus, serving_namespace=sv.namespace, service_port=sv.router_endpoint.port,
                vpc_cidr=vpc, system=system, generated_dir=gen_root / env.name),
            agents=AgentsSlice(**frame, agents=tuple(env.agents), agent_pool=env.agent_pool, teams=teams_by_name,
                               vpc_cidr=vpc, router=sv.router_endpoint, guardrails=sv.guardrails_endpoint),
        )
