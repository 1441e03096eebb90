"""Building blocks every section of the environment model shares: the strict base model, the
DNS-label name type, and the team lookup that agents and training pipelines both validate with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # pragma: no cover
    from .model import Environment, Team

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$", description="DNS-1123 label")]


class Strict(BaseModel):
    """Frozen, and unknown keys fail at load time with their YAML path."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
