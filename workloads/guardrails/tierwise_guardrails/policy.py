"""Per-team policy: which entities to look for, what to do with each, which operator redacts it,
and the injection thresholds. Strict models: a typo in a policy file fails at load time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tierwise_guardrails.pii.detector import ALL_ENTITIES

Action = Literal["allow", "redact", "block", "escalate"]
SEVERITY = {"allow": 0, "redact": 1, "escalate": 2, "block": 3}


class DirectionPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    entities: dict[str, Action] = Field(default_factory=dict, description="Entity → action; unlisted entities use default_action.")
    default_action: Action = "redact"
    check_injection: bool = True
    injection_escalate_threshold: float = Field(0.85, ge=0, le=1)
    injection_block_threshold: float = Field(0.95, ge=0, le=1)

    @model_validator(mode="after")
    def _check(self) -> "DirectionPolicy":
        unknown = set(self.entities) - ALL_ENTITIES
        if unknown:
            raise ValueError(f"unknown entities {sorted(unknown)}; allowed: {sorted(ALL_ENTITIES)}")
        if self.injection_escalate_threshold > self.injection_block_threshold:
            raise ValueError("injection_escalate_threshold must be <= injection_block_threshold")
        return self

    def action_for(self, entity: str) -> Action:
        return self.entities.get(entity, self.default_action)


class TeamPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    operators: dict[str, Literal["mask", "tag", "hash"]] = Field(default_factory=dict)
    default_operator: Literal["mask", "tag", "hash"] = "tag"
    min_score: float = Field(0.5, ge=0, le=1, description="PII findings below this score are ignored.")
    input: DirectionPolicy = DirectionPolicy()
    # Model responses: leaked credentials are blocked, PII redacted; no injection scoring.
    output: DirectionPolicy = DirectionPolicy(entities={"CREDENTIAL": "block"}, check_injection=False)

    @model_validator(mode="after")
    def _check_ops(self) -> "TeamPolicy":
        unknown = set(self.operators) - ALL_ENTITIES
        if unknown:
            raise ValueError(f"unknown entities in operators {sorted(unknown)}; allowed: {sorted(ALL_ENTITIES)}")
        return self


class PolicySet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    default: TeamPolicy = TeamPolicy()
    teams: dict[str, TeamPolicy] = Field(default_factory=dict)

    def for_team(self, team: str | None) -> TeamPolicy:
        return self.teams.get(team or "", self.default)

    @classmethod
    def load(cls, path: Path | None) -> "PolicySet":
        if path is None:
            return cls()
        try:
            return cls.model_validate(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot load team policies from {path}: {exc}") from exc
