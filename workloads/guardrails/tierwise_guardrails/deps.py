"""Typed access to per-app state (built in the lifespan). Tests swap these with dependency_overrides."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tierwise_guardrails.engine import Guard
from tierwise_guardrails.observability import Metrics
from tierwise_guardrails.settings import Settings


def get_guard(request: Request) -> Guard:
    return request.state.guard


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


GuardDep = Annotated[Guard, Depends(get_guard)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
