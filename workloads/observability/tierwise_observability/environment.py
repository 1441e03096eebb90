"""The slice of an `environments/<name>.yaml` file that observability needs, read directly.

Observability never imports the CDK package (`tierwise`): it reads the same YAML and keeps only
teams (budgets, namespaces), models (pools, adapters), GPU pools and the serving knobs the rules
depend on. Defaults mirror `tierwise_core/config/model.py` (tokens_per_day 5M, queue_target_waiting 4).
Unknown keys are ignored on purpose (the environment schema owns strictness); missing required
keys fail with their YAML path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_TOKENS_PER_DAY = 5_000_000
DEFAULT_QUEUE_TARGET_WAITING = 4


class EnvironmentError_(ValueError):
    """A required key is missing or has the wrong type (message names the YAML path)."""


@dataclass(frozen=True)
class TeamSpec:
    name: str
    monthly_budget_usd: float
    tokens_per_day: int = DEFAULT_TOKENS_PER_DAY
    namespaces: tuple[str, ...] = ()
    cost_center: str = ""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    pool: str
    adapters: tuple[str, ...] = ()


@dataclass(frozen=True)
class ObsEnvironment:
    name: str
    region: str
    teams: tuple[TeamSpec, ...]
    models: tuple[ModelSpec, ...] = ()
    gpu_pools: tuple[str, ...] = ()
    bedrock_models: tuple[str, ...] = ()
    queue_target_waiting: int = DEFAULT_QUEUE_TARGET_WAITING
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def saturation_waiting(self) -> int:
        """The router's `routing.saturation_waiting` as rendered by the platform (4x the KEDA target)."""
        return self.queue_target_waiting * 4


def _req(d: dict[str, Any], key: str, where: str, typ: type | tuple[type, ...]) -> Any:
    if key not in d:
        raise EnvironmentError_(f"{where}.{key}: required")
    v = d[key]
    if not isinstance(v, typ) or isinstance(v, bool):
        raise EnvironmentError_(f"{where}.{key}: expected {getattr(typ, '__name__', typ)}, got {type(v).__name__}")
    return v


def from_mapping(d: dict[str, Any], source: str = "<env>") -> ObsEnvironment:
    if not isinstance(d, dict):
        raise EnvironmentError_(f"{source}: top level must be a mapping")
    teams = []
    for i, t in enumerate(_req(d, "teams", source, list)):
        w = f"{source}: teams[{i}]"
        teams.append(TeamSpec(
            name=_req(t, "name", w, str),
            monthly_budget_usd=float(_req(t, "monthly_budget_usd", w, (int, float))),
            tokens_per_day=int(t.get("tokens_per_day", DEFAULT_TOKENS_PER_DAY)),
            namespaces=tuple(t.get("namespaces") or ()),
            cost_center=str(t.get("cost_center", "")),
        ))
    models = []
    for i, m in enumerate(d.get("models") or []):
        w = f"{source}: models[{i}]"
        models.append(ModelSpec(name=_req(m, "name", w, str), pool=_req(m, "pool", w, str),
                                adapters=tuple(a["name"] for a in m.get("lora_adapters") or [])))
    serving = d.get("serving") or {}
    return ObsEnvironment(
        name=_req(d, "name", source, str),
        region=str(d.get("region", "")),
        teams=tuple(teams),
        models=tuple(models),
        gpu_pools=tuple(p["name"] for p in d.get("gpu_pools") or []),
        bedrock_models=tuple((d.get("bedrock") or {}).get("allowed_model_ids") or ()),
        queue_target_waiting=int(serving.get("queue_target_waiting", DEFAULT_QUEUE_TARGET_WAITING)),
    )


def load(path: str | Path) -> ObsEnvironment:
    p = Path(path)
    return from_mapping(yaml.safe_load(p.read_text()), source=str(p))


def repo_root(start: Path | None = None) -> Path | None:
    """The checkout root (has `environments/` and `workloads/`), searched upwards; None in an image."""
    here = (start or Path(__file__)).resolve()
    for p in [here, *here.parents]:
        if (p / "environments").is_dir() and (p / "workloads").is_dir():
            return p
    return None


def all_environments(root: Path) -> dict[str, ObsEnvironment]:
    return {p.stem: load(p) for p in sorted((root / "environments").glob("*.yaml"))}
