"""Environment facts exported as JSON for distributions that must not import this package.

The observability workload (`workloads/observability`, its own venv, no cdktn) renders Prometheus rules,
scrape configs and dashboards per environment. It used to re-read `environments/<env>.yaml` with its own
lenient copy of the model and its defaults. Now the one loader (`tierwise.config.load_environment`)
validates the file and fills defaults, and `tierwise export observability --env NAME` writes the facts
observability needs as one JSON document (`ObservabilityFacts`). Its JSON Schema is generated from the
model below (`tierwise export observability --schema`) and committed inside the observability package,
which validates every export against it; `schema_version` changes whenever the shape does.

Every field is required in the export: defaults are filled here, from the environment model, never by
the consumer.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from .config import Environment

#: Bump when a field is added, removed, renamed or changes meaning; consumers refuse other versions.
OBSERVABILITY_SCHEMA_VERSION = 1
OBSERVABILITY_KIND = "tierwise/observability-facts"

class _Facts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TeamFacts(_Facts):
    name: str
    cost_center: str
    namespaces: list[str]
    monthly_budget_usd: Annotated[float, Field(gt=0)]
    tokens_per_day: Annotated[int, Field(ge=0)]


class ModelFacts(_Facts):
    """A self-hosted catalog model."""

    name: str
    pool: str
    adapters: list[str] = Field(description="LoRA adapter names served on this model")


class ObservabilityFacts(_Facts):
    """What `tierwise-observability generate` renders one environment's rules, scrape configs and dashboards from."""

    model_config = ConfigDict(title="tierwise observability facts")  # _Facts' forbid/frozen are inherited

    # the Literals are built from the constants above: bumping the version changes what validates
    kind: Literal[OBSERVABILITY_KIND]  # type: ignore[valid-type]
    schema_version: Literal[OBSERVABILITY_SCHEMA_VERSION]  # type: ignore[valid-type]
    environment: str = Field(description="environment name (environments/<name>.yaml)")
    region: str
    teams: Annotated[list[TeamFacts], Field(min_length=1)]
    models: list[ModelFacts]
    gpu_pools: list[str] = Field(description="GPU pool names")
    bedrock_model_ids: list[str] = Field(description="bedrock.allowed_model_ids")
    queue_target_waiting: Annotated[int, Field(ge=1)] = Field(description="serving.queue_target_waiting (KEDA target)")
    router_saturation_waiting: Annotated[int, Field(ge=1)] = Field(
        description="the router's routing.saturation_waiting: it skips a replica with more requests waiting")
    monitoring_namespace: str = Field(description="serving.monitoring_namespace: where Prometheus and the "
                                                  "dashboard ConfigMap live")


def observability_facts(env: Environment) -> ObservabilityFacts:
    sv = env.serving
    return ObservabilityFacts(
        kind=OBSERVABILITY_KIND,
        schema_version=OBSERVABILITY_SCHEMA_VERSION,
        environment=env.name,
        region=env.region,
        teams=[TeamFacts(name=t.name, cost_center=t.cost_center, namespaces=list(t.namespaces),
                         monthly_budget_usd=t.monthly_budget_usd, tokens_per_day=t.tokens_per_day) for t in env.teams],
        models=[ModelFacts(name=m.name, pool=m.pool, adapters=[a.name for a in m.lora_adapters]) for m in env.models],
        gpu_pools=[p.name for p in env.gpu_pools],
        bedrock_model_ids=list(env.bedrock.allowed_model_ids),
        queue_target_waiting=sv.queue_target_waiting,
        router_saturation_waiting=sv.router_saturation_waiting,
        monitoring_namespace=sv.monitoring_namespace,
    )


def observability_facts_json(env: Environment) -> str:
    """The export as written to files and stdout (stable key order, trailing newline)."""
    return observability_facts(env).model_dump_json(indent=2) + "\n"


def observability_schema_json() -> str:
    """The JSON Schema of the export, as committed in the observability package."""
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **ObservabilityFacts.model_json_schema()}
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
