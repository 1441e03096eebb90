"""The agent's configuration file (`agent.json`), rendered by the platform from the `agents:` entry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DynamoCheckpoint(Strict):
    store: Literal["dynamodb"]
    table: str
    ttl_days: int = 14


class AgentConfig(Strict):
    agent: str
    team: str
    router_principal: str
    region: str
    queue_url: str
    visibility_timeout_s: int = Field(300, ge=1)
    checkpoint: DynamoCheckpoint
    router_url: str
    models: list[str] = Field(min_length=1)
    tools: dict[str, str] = Field(default_factory=dict)
    approval_required: list[str] = Field(default_factory=list)
    guardrails_url: str | None = None
    #: Guardrails policy that turns every check into a review ticket (see docs/onboard-an-agent.md).
    approval_policy: str = "agent-approval"

    @classmethod
    def load(cls, path: Path) -> "AgentConfig":
        return cls.model_validate(json.loads(Path(path).read_text()))
