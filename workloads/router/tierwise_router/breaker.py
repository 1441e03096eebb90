"""A circuit breaker per upstream: closed → open after N consecutive failures → half-open after a
cool-down (one trial call) → closed on success. The clock is injected."""

from __future__ import annotations

import time
from collections.abc import Callable


class Breaker:
    def __init__(self, failures: int, reset_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = failures
        self.reset_s = reset_s
        self._clock = clock
        self.fails = 0
        self.opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self._clock() - self.opened_at >= self.reset_s else "open"

    @property
    def available(self) -> bool:
        """Whether ``allow()`` would let a call through now, without claiming the half-open trial. The
        balancer filters on this: a half-open replica whose one trial is in flight is not a candidate
        (picking it meant a needless Tier-2 fallback while another replica was healthy)."""
        s = self.state
        return s == "closed" or (s == "half_open" and not self._trial)

    def allow(self) -> bool:
        s = self.state
        if s == "closed":
            return True
        if s == "half_open" and not self._trial:
            self._trial = True
            return True
        return False

    def success(self) -> None:
        self.fails = 0
        self.opened_at = None
        self._trial = False

    def failure(self) -> None:
        self.fails += 1
        self._trial = False
        if self.opened_at is not None or self.fails >= self.threshold:
            self.opened_at = self._clock()
