"""Per-process router state, built by the app factory's lifespan (no module-level state)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .balancer import Replica
from .breaker import Breaker
from .budgets import BudgetStore
from .config import BedrockModel, ExactPrice, RouterConfig, Team, VllmModel
from .ledger import Ledger
from .observability import Metrics
from .ratelimit import Pacer
from .settings import Settings


@dataclass
class RouterState:
    settings: Settings
    config: RouterConfig
    triage: Any  # triage.Triage (v1) or triage_v2.TriageV2: score, ascore, decide, threshold_for_share
    threshold: float
    metrics: Metrics
    log: logging.Logger
    pacer: Pacer
    budgets: BudgetStore
    session: aiohttp.ClientSession
    keys: dict[str, Team]
    tier1: VllmModel
    replicas: list[Replica]
    tier2: BedrockModel | None
    bedrock: dict[str, Any]  # model name → boto3 bedrock-runtime client
    tier2_breaker: Breaker
    ledger: Ledger | None
    now: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    tasks: list[asyncio.Task] = field(default_factory=list)
    ids: random.Random = field(default_factory=lambda: random.Random())  # seeded from urandom once
    rag_key: str | None = None  # settings.rag_api_key, unwrapped once
    prices: dict[str, ExactPrice] = field(default_factory=dict)  # model name → integer price (config.py)
    tracer: Any = None  # opentelemetry Tracer (tracing.py); None: no spans are made
    adapter_routes: Any = None  # canary.AdapterRoutes: adapter canary splits (None: adapters as named)

    def __post_init__(self) -> None:
        if self.rag_key is None and self.settings.rag_api_key is not None:
            self.rag_key = self.settings.rag_api_key.get_secret_value()
        if not self.prices:
            self.prices = {m.name: ExactPrice(m.price) for m in self.config.models}
