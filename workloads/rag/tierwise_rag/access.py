"""Team access control, enforced by the library (every KnowledgeBase call takes the caller's team)
and therefore by the API, which resolves the team from the caller's API key.

Grants are glob patterns over collection names per action; ``admin`` implies ``write`` implies
``read``. A team not in the config can do nothing. Denials never reveal whether a collection exists.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Action = Literal["read", "write", "admin"]
_IMPLIED: dict[str, tuple[str, ...]] = {"read": ("read", "write", "admin"), "write": ("write", "admin"), "admin": ("admin",)}


class TeamGrant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    read: list[str] = Field(default_factory=list, description="collection name patterns the team may retrieve from")
    write: list[str] = Field(default_factory=list, description="patterns the team may ingest into / delete from")
    admin: list[str] = Field(default_factory=list, description="patterns the team may create, promote, roll back, drop")


class AccessDenied(Exception):
    def __init__(self, team: str, collection: str, action: str) -> None:
        super().__init__(f"team {team!r} may not {action} collection {collection!r}")
        self.team, self.collection, self.action = team, collection, action


class AccessPolicy:
    def __init__(self, grants: dict[str, TeamGrant]) -> None:
        self._grants = dict(grants)

    def allows(self, team: str, collection: str, action: Action) -> bool:
        grant = self._grants.get(team)
        if grant is None:
            return False
        return any(
            fnmatchcase(collection, pattern) for level in _IMPLIED[action] for pattern in getattr(grant, level)
        )

    def require(self, team: str, collection: str, action: Action) -> None:
        if not self.allows(team, collection, action):
            raise AccessDenied(team, collection, action)

    def teams(self) -> list[str]:
        return sorted(self._grants)
