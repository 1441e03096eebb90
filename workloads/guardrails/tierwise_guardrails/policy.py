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
    # None: the thresholds the injection model was calibrated with (injection-v2: on its validation
    # source, 2 % / 0.5 % FPR; injection-v1: 0.85 / 0.95).
    injection_escalate_threshold: float | None = Field(None, ge=0, le=1)
    injection_block_threshold: float | None = Field(None, ge=0, le=1)

    @model_validator(mode="after")
    def _check(self) -> "DirectionPolicy":
        unknown = set(self.entities) - ALL_ENTITIES
        if unknown:
            raise ValueError(f"unknown entities {sorted(unknown)}; allowed: {sorted(ALL_ENTITIES)}")
        esc, blk = self.injection_escalate_threshold, self.injection_block_threshold
        if esc is not None and blk is not None and esc > blk:
            raise ValueError("injection_escalate_threshold must be <= injection_block_threshold")
        return self

    def injection_thresholds(self, default: tuple[float, float]) -> tuple[float, float]:
        """(escalate, block), each falling back to the model's calibrated value."""
        esc = default[0] if self.injection_escalate_threshold is None else self.injection_escalate_threshold
        blk = default[1] if self.injection_block_threshold is None else self.injection_block_threshold
        if esc > blk:
            raise ValueError(f"injection escalate threshold {esc} > block threshold {blk}: set both in the policy")
        return esc, blk

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
