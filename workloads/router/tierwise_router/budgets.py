"""Per-team budgets (tokens per UTC day, USD per UTC month), exact under concurrency.

Protocol: ``reserve`` the estimate (prompt tokens + max_tokens at the model's price) *before* the
call — atomically checked against both budgets — then ``settle`` with actual usage (or ``release``
on failure). Money is integer nano-USD. A reservation remembers its period keys, so a call that
straddles midnight settles into the period it was charged to.

- ``MemoryBudgets``: one process; check-and-increment has no await in between, so it is atomic on
  the event loop.
- ``RedisBudgets``: several replicas; a Lua script checks and increments both counters atomically.
  Connections come from a *blocking* pool (``max_connections``, callers wait up to ``pool_timeout_s``):
  redis-py's default async pool raises ``MaxConnectionsError`` past 100 connections, which at 200
  concurrent clients (bench/router_faults.py) turned ~70 % of requests into 500s and leaked their
  reservations (a settle that raised never ran). A Redis failure in ``reserve`` raises
  ``BudgetStoreUnavailable`` (the caller answers 503 before any model runs); a failure in ``settle`` or
  ``release`` is logged with the amounts (``budget_settle_failed``) and not raised: the request was
  already served, and the counter keeps the reservation — over-charged by a known amount, never
  under-charged.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Protocol

from .config import Budgets
from .observability import LOGGER


@dataclass(frozen=True)
class Reservation:
    team: str
    tokens_key: str
    usd_key: str
    tokens: int
    nano: int
    request_id: str = ""  # for the log line if settling fails: joins it to the request's chat line and ledger entry


class BudgetStoreUnavailable(Exception):
    """The budget store could not be reached to reserve (the request must not run unaccounted)."""


@dataclass(frozen=True)
class BudgetExceeded:
    budget: str  # "tokens_per_day" | "usd_per_month"
    used: int
    limit: int


def period_keys(team: str, now: dt.datetime) -> tuple[str, str]:
    now = now.astimezone(dt.UTC)
    return (f"tierwise:budget:{team}:tokens:{now:%Y%m%d}", f"tierwise:budget:{team}:nanousd:{now:%Y%m}")


class _KeyCache:
    """period_keys memoised per (team, UTC day): strftime formatting was ~1.2 % of the router's py-spy
    samples at 500 req/s. Bounded: cleared when it exceeds ``cap`` entries (teams × days)."""

    def __init__(self, cap: int = 4096) -> None:
        self._c: dict[tuple[str, int, int, int], tuple[str, str]] = {}
        self._cap = cap

    def __call__(self, team: str, now: dt.datetime) -> tuple[str, str]:
        u = now.astimezone(dt.UTC) if now.tzinfo is not dt.UTC else now
        k = (team, u.year, u.month, u.day)
        v = self._c.get(k)
        if v is None:
            if len(self._c) >= self._cap:
                self._c.clear()
            v = self._c[k] = period_keys(team, u)
        return v


class BudgetStore(Protocol):
    async def reserve(self, team: str, budgets: Budgets, tokens: int, nano: int,
                      now: dt.datetime, request_id: str = "") -> Reservation | BudgetExceeded: ...
    async def settle(self, r: Reservation, tokens: int, nano: int) -> None: ...
    async def release(self, r: Reservation) -> None: ...
    async def usage(self, team: str, now: dt.datetime) -> tuple[int, int]: ...
    async def aclose(self) -> None: ...


def _limits(b: Budgets) -> tuple[int, int]:
    return (b.tokens_per_day if b.tokens_per_day is not None else -1,
            b.usd_per_month_nano if b.usd_per_month_nano is not None else -1)


class MemoryBudgets:
    def __init__(self) -> None:
        self._c: dict[str, int] = {}
        self._keys = _KeyCache()

    async def reserve(self, team: str, budgets: Budgets, tokens: int, nano: int,
                      now: dt.datetime, request_id: str = "") -> Reservation | BudgetExceeded:
        tk, uk = self._keys(team, now)
        tl, ul = _limits(budgets)
        t, u = self._c.get(tk, 0), self._c.get(uk, 0)
        if tl >= 0 and t + tokens > tl:
            return BudgetExceeded("tokens_per_day", t, tl)
        if ul >= 0 and u + nano > ul:
            return BudgetExceeded("usd_per_month", u, ul)
        self._c[tk] = t + tokens
        self._c[uk] = u + nano
        return Reservation(team, tk, uk, tokens, nano, request_id)

    async def settle(self, r: Reservation, tokens: int, nano: int) -> None:
        self._c[r.tokens_key] = self._c.get(r.tokens_key, 0) + tokens - r.tokens
        self._c[r.usd_key] = self._c.get(r.usd_key, 0) + nano - r.nano

    async def release(self, r: Reservation) -> None:
        await self.settle(r, 0, 0)

    async def usage(self, team: str, now: dt.datetime) -> tuple[int, int]:
        tk, uk = period_keys(team, now)
        return self._c.get(tk, 0), self._c.get(uk, 0)

    async def aclose(self) -> None:
        return None


_RESERVE = """
local t = tonumber(redis.call('GET', KEYS[1]) or '0')
local u = tonumber(redis.call('GET', KEYS[2]) or '0')
local tok, tl, nano, ul = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if tl >= 0 and t + tok > tl then return {0, 'tokens_per_day', t, tl} end
if ul >= 0 and u + nano > ul then return {0, 'usd_per_month', u, ul} end
redis.call('INCRBY', KEYS[1], tok)
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('INCRBY', KEYS[2], nano)
redis.call('EXPIRE', KEYS[2], ARGV[6])
return {1, '', 0, 0}
"""

DAY_TTL_S = 2 * 86400
MONTH_TTL_S = 62 * 86400


class RedisBudgets:
    def __init__(self, url: str, max_connections: int = 64, pool_timeout_s: float = 5.0) -> None:
        import redis.asyncio as aredis
        from redis.exceptions import RedisError

        self._pool = aredis.BlockingConnectionPool.from_url(url, max_connections=max_connections,
                                                            timeout=pool_timeout_s, decode_responses=True)
        self._r = aredis.Redis(connection_pool=self._pool)
        self._reserve = self._r.register_script(_RESERVE)
        self._keys = _KeyCache()
        self._errors = (RedisError, OSError, TimeoutError)
        self._log = logging.getLogger(LOGGER)

    async def reserve(self, team: str, budgets: Budgets, tokens: int, nano: int,
                      now: dt.datetime, request_id: str = "") -> Reservation | BudgetExceeded:
        tk, uk = self._keys(team, now)
        tl, ul = _limits(budgets)
        try:
            ok, which, used, limit = await self._reserve(keys=[tk, uk],
                                                         args=[tokens, tl, nano, ul, DAY_TTL_S, MONTH_TTL_S])
        except self._errors as e:
            raise BudgetStoreUnavailable(f"{e.__class__.__name__}: {e}") from e
        if int(ok) == 1:
            return Reservation(team, tk, uk, tokens, nano, request_id)
        return BudgetExceeded(which, int(used), int(limit))

    async def settle(self, r: Reservation, tokens: int, nano: int) -> None:
        try:
            async with self._r.pipeline(transaction=True) as p:
                p.incrby(r.tokens_key, tokens - r.tokens)
                p.incrby(r.usd_key, nano - r.nano)
                await p.execute()
        except self._errors as e:
            self._log.error("budget_settle_failed", extra={
                "team": r.team, "request_id": r.request_id, "tokens_key": r.tokens_key, "usd_key": r.usd_key, "reserved_tokens": r.tokens,
                "reserved_nano_usd": r.nano, "actual_tokens": tokens, "actual_nano_usd": nano,
                "error": e.__class__.__name__})

    async def release(self, r: Reservation) -> None:
        await self.settle(r, 0, 0)

    async def usage(self, team: str, now: dt.datetime) -> tuple[int, int]:
        tk, uk = period_keys(team, now)
        t, u = await self._r.mget(tk, uk)
        return int(t or 0), int(u or 0)

    async def aclose(self) -> None:
        await self._r.aclose()
        await self._pool.disconnect()
