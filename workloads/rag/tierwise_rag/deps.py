"""Request dependencies: the knowledge base from the app, and the caller's team from its API key."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from .engine import KnowledgeBase
from .settings import Settings


class Unauthorized(Exception):
    pass


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_kb(request: Request) -> KnowledgeBase:
    return request.state.kb


def get_team(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing bearer API key (Authorization: Bearer <key>)")
    settings: Settings = request.app.state.settings
    for name, team in settings.teams.items():
        if hmac.compare_digest(team.api_key.get_secret_value().encode(), token.encode()):
            request.state.team = name
            return name
    raise Unauthorized("unknown API key")


SettingsDep = Annotated[Settings, Depends(get_settings)]
KBDep = Annotated[KnowledgeBase, Depends(get_kb)]
TeamDep = Annotated[str, Depends(get_team)]
