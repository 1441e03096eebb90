"""The environment as a whole: every section, the facts derived across sections, and every cross-section rule.

Sections (`infra`, `pools`, `catalog`, `teams`, `serving`, `agents`, `training`) validate themselves and
know nothing of each other. The rules that relate them — a model fits its pool, teams and agents and
pipelines name things that exist, budgets and quotas add up — live here, in one place, run by the
`Environment` validator at load time, so a bad file fails with its YAML path. Nothing imports this module
back except `slices.py`, the loader and the public `tierwise.config` package (no type-level cycle).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from .agents import Agent, AgentPool, cpu_millis, fqdn_allowed
from .base import Name, Strict
from .bedrock_catalog import BedrockTarget
from .bedrock_catalog import resolve as resolve_bedrock
from .catalog import CatalogModel, FullGpus, MigSlice
from .hardware import WEIGHTS_MEMORY_FRACTION, weights_gib
from .infra import Cluster, ImageSources, Network, StateBackend
from .pools import GpuPool, MigSharing, TimeSliceSharing
from .serving import Observability, Serving, prometheus_service
from .teams import Bedrock, Platform, Team
from .training import TRAIN_PRECISION, Training, gpu_unit_gib


class Environment(Strict):
    """One environment file: its sections, the facts derived across them, and (in the validator) every rule
    that relates one section to another."""

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

    # -- derived facts ---------------------------------------------------------------------------
    @property
    def prefix(self) -> str:
        """`tierwise-<env>`: the name prefix of this environment's resources (and the EKS cluster's name)."""
        return f"tierwise-{self.name}"

    def pool(self, name: str) -> GpuPool:
        return next(p for p in self.gpu_pools if p.name == name)

    def team(self, name: str) -> Team:
        return next(t for t in self.teams if t.name == name)

    @property
    def all_namespaces(self) -> list[str]:
        return [ns for t in self.teams for ns in t.namespaces]

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



# --------------------------------------------------------------------------------------------
# Cross-section rules
def resolve_team(env: Environment, where: str, team: str, namespace: str | None, why: str,
                 field_paths: bool = False) -> Team:
    """The team `team` of `env`, checking that `namespace` (when given) is one of its namespaces.
    With `field_paths`, errors name `<where>.team` / `<where>.namespace` instead of `<where>`."""
    teams = {t.name: t for t in env.teams}
    found = teams.get(team)
    if found is None:
        raise ValueError(f"{where}{'.team' if field_paths else ''}: team {team!r} is not in teams ({', '.join(teams)})")
    if namespace is not None and namespace not in found.namespaces:
        raise ValueError(f"{where}{'.namespace' if field_paths else ''}: namespace {namespace!r} is not one of team {team}'s namespaces "
                         f"({', '.join(found.namespaces)}); {why}")
    return found


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


def check_agents(env: Environment) -> None:
    """Cross-field rules of `agents:` against teams, models, the allowlist and the agent pool."""
    teams = {t.name: t for t in env.teams}
    seen: set[str] = set()
    carved: dict[str, int] = {}
    for i, a in enumerate(env.agents):
        where = f"agents[{i}] ({a.name})"
        if a.name in seen:
            raise ValueError(f"{where}: agent name {a.name!r} appears twice")
        seen.add(a.name)
        team = resolve_team(env, where, a.team, a.namespace, "agents run in their team's namespaces")
        for m in a.models:
            if m not in team.allowed_models:
                raise ValueError(f"{where}: model {m!r} is not in team {a.team}'s allowed_models "
                                 f"({', '.join(team.allowed_models) or 'none'}); add it to the team or remove it here")
        for t in a.tools_of("external"):
            if not fqdn_allowed(t.fqdn, env.network.egress_allowlist):
                raise ValueError(f"{where}: tool {t.name!r} reaches {t.fqdn!r}, which is not on network.egress_allowlist "
                                 f"({', '.join(env.network.egress_allowlist) or 'empty'}); add it there first")
        if a.monthly_budget_usd is not None and a.monthly_budget_usd > team.monthly_budget_usd:
            raise ValueError(f"{where}: monthly_budget_usd {a.monthly_budget_usd:g} exceeds team {a.team}'s "
                             f"monthly_budget_usd {team.monthly_budget_usd:g}")
        carved[a.team] = carved.get(a.team, 0) + a.tokens_per_day
        if a.replicas.max * cpu_millis(a.cpu) > env.agent_pool.cpu_limit * 1000:
            raise ValueError(f"{where}: replicas.max {a.replicas.max} x cpu {a.cpu} exceeds agent_pool.cpu_limit "
                             f"{env.agent_pool.cpu_limit}; lower replicas.max or raise agent_pool.cpu_limit")
    for name, tokens in carved.items():
        if tokens > teams[name].tokens_per_day:
            raise ValueError(f"agents of team {name}: tokens_per_day add up to {tokens:,}, above the team's "
                             f"tokens_per_day {teams[name].tokens_per_day:,}; agent budgets are carved out of the team's")


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def check_training(env: Environment) -> None:
    """Cross-field rules of `training:` against teams, GPU pools and the model catalog."""
    tr = env.training
    for m in env.models:
        for src in [m.source] + ([m.speculative_model] if m.speculative_model else []):
            if _overlaps(tr.datasets_prefix, src):
                raise ValueError(f"training.datasets_prefix {tr.datasets_prefix!r} overlaps the weights of models "
                                 f"({m.name}: {src!r}); model servers would read datasets. Use a separate prefix")
    pools = {p.name: p for p in env.gpu_pools}
    models = {m.name: m for m in env.models}
    seen: set[str] = set()
    for i, p in enumerate(tr.pipelines):
        where = f"training.pipelines[{i}]"
        if p.name in seen:
            raise ValueError(f"{where}.name: pipeline name {p.name!r} appears twice")
        seen.add(p.name)
        team = resolve_team(env, where, p.team, p.namespace, "the Job runs in (and is admitted by) its team's queue",
                            field_paths=True)
        pool = pools.get(p.pool)
        if pool is None:
            raise ValueError(f"{where}.pool: pool {p.pool!r} is not in gpu_pools ({', '.join(pools)})")
        if "spot" not in pool.capacity_types:
            raise ValueError(f"{where}.pool: pool {p.pool!r} has capacity_types {pool.capacity_types}; training runs "
                             "on spot (resumable from checkpoints), so add 'spot' to the pool or pick a pool that has it")
        if team.gpu_quota.get(p.pool, 0) < 1:
            raise ValueError(f"{where}.pool: team {p.team} has no gpu_quota on pool {p.pool!r} "
                             f"({team.gpu_quota or 'none'}); Kueue would never admit the Job. Add teams[].gpu_quota.{p.pool}")
        model = models.get(p.model)
        if model is None:
            raise ValueError(f"{where}.model: model {p.model!r} is not in models ({', '.join(models) or 'none'})")
        if p.model not in team.allowed_models:
            raise ValueError(f"{where}.model: model {p.model!r} is not in team {p.team}'s allowed_models "
                             f"({', '.join(team.allowed_models) or 'none'}); a team trains adapters only for models it may call")
        if not model.lora_adapters:
            raise ValueError(f"{where}.model: model {p.model!r} has no lora_adapters; declare the adapter under "
                             f"models[].lora_adapters first (the servers load only declared adapters)")
        adapters = {a.name: a for a in model.lora_adapters}
        if p.adapter not in adapters:
            raise ValueError(f"{where}.adapter: {p.adapter!r} is not one of model {p.model}'s lora_adapters "
                             f"({', '.join(adapters)})")
        layout = getattr(pool.sharing, "layout", None)
        if p.mig_profile is not None and layout is None:
            raise ValueError(f"{where}.mig_profile: pool {p.pool!r} shares GPUs as {pool.sharing.mode!r}, not MIG; "
                             "remove mig_profile")
        if layout is not None and p.mig_profile is not None and p.mig_profile not in layout:
            raise ValueError(f"{where}.mig_profile: {p.mig_profile!r} is not in pool {p.pool!r}'s layout ({', '.join(layout)})")
        precision = TRAIN_PRECISION[p.method]
        need, have = weights_gib(model.params_b, precision), gpu_unit_gib(p, pool)
        if need > have * WEIGHTS_MEMORY_FRACTION:
            raise ValueError(f"{where}.pool: {p.method} loads {model.name} ({model.params_b:g}B) at {precision}: "
                             f"{need:.1f} GiB of weights, but one GPU unit of pool {p.pool!r} has {have:g} GiB "
                             f"({WEIGHTS_MEMORY_FRACTION:.0%} for weights); use qlora, a bigger MIG profile or another pool")
        if p.max_seq_len > model.max_model_len:
            raise ValueError(f"{where}.max_seq_len: {p.max_seq_len} exceeds model {p.model}'s max_model_len "
                             f"{model.max_model_len}; vLLM could not serve what the adapter was trained on")
        if p.work_disk_gib > pool.disk_gib // 2:
            raise ValueError(f"{where}.work_disk_gib: {p.work_disk_gib} GiB is more than half of pool {p.pool!r}'s "
                             f"disk_gib {pool.disk_gib}; lower it or raise gpu_pools[].disk_gib")
