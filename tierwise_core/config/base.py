"""Building blocks every section of the environment model shares: the strict base model, the DNS-label
name type and replica bounds. Nothing here knows about the environment as a whole (no type cycle:
sections import this module, `environment.py` imports the sections, nothing imports back)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$", description="DNS-1123 label")]


class Strict(BaseModel):
    """Frozen, and unknown keys fail at load time with their YAML path."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Replicas(Strict):
    min: Annotated[int, Field(ge=0)] = 1
    max: Annotated[int, Field(ge=1)] = 2

    @model_validator(mode="after")
    def _order(self) -> Replicas:
        if self.min > self.max:
            raise ValueError(f"replicas.min ({self.min}) is above replicas.max ({self.max})")
        return self
