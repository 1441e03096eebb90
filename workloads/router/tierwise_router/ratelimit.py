"""Front-door pacing: per-team RPM and TPM token buckets with a bounded wait queue.

A request takes its cost from each bucket immediately, possibly driving the level negative (virtual
scheduling, as in GCRA): the deficit divided by the refill rate is exactly how long it must wait
for its turn, so waiters are served in arrival order without polling. If that wait exceeds
``max_wait_s`` or ``max_queue`` requests are already waiting, nothing is taken and the caller gets
429 with ``Retry-After``. The clock and sleep are injected (tests use a fake clock, no sleeps).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .config import RateLimits


@dataclass
class Bucket:
    rate_per_s: float
    capacity: float
    level: float
    stamp: float

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate_per_s)
        self.stamp = now


@dataclass
class TeamPacer:
    limits: RateLimits
    buckets: dict[str, Bucket] = field(default_factory=dict)
    waiting: int = 0


@dataclass(frozen=True)
class Admit:
    wait_s: float


@dataclass(frozen=True)
class Reject:
    limit: str  # "rpm" | "tpm" | "queue"
    retry_after_s: int


class Pacer:
    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._teams: dict[str, TeamPacer] = {}

    def queue_depth(self) -> dict[str, int]:
        return {t: p.waiting for t, p in self._teams.items()}

    def _pacer(self, team: str, limits: RateLimits, now: float) -> TeamPacer:
        p = self._teams.get(team)
        if p is None or p.limits != limits:
            p = TeamPacer(limits)
            if limits.rpm:
                p.buckets["rpm"] = Bucket(limits.rpm / 60.0, float(limits.rpm), float(limits.rpm), now)
            if limits.tpm:
                p.buckets["tpm"] = Bucket(limits.tpm / 60.0, float(limits.tpm), float(limits.tpm), now)
            self._teams[team] = p
        return p

    def try_admit(self, team: str, limits: RateLimits, tokens: int) -> Admit | Reject:
        now = self._clock()
        p = self._pacer(team, limits, now)
        cost = {"rpm": 1.0, "tpm": float(tokens)}
        wait = 0.0
        for name, b in p.buckets.items():
            b.refill(now)
            c = cost[name]
            if c > b.capacity:  # can never fit: a single request bigger than a minute of TPM
                return Reject(name, 60)
            deficit = c - b.level
            if deficit > 0:
                w = deficit / b.rate_per_s
                if w > limits.max_wait_s:
                    return Reject(name, max(1, math.ceil(w)))
                wait = max(wait, w)
        if wait > 0 and p.waiting >= limits.max_queue:
            return Reject("queue", max(1, math.ceil(wait)))
        for name, b in p.buckets.items():
            b.level -= cost[name]
        return Admit(wait)

    async def wait(self, team: str, wait_s: float) -> None:
        """Wait out an ``Admit.wait_s`` (counted in the team's queue while waiting)."""
        p = self._teams[team]
        p.waiting += 1
        try:
            await self._sleep(wait_s)
        finally:
            p.waiting -= 1
