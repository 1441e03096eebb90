"""Budgets exact under concurrency: 200 concurrent requests against a budget that allows 50."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
import orjson
import pytest
from conftest import KEY_A, hash_api_key, make_config

from tierwise_router.budgets import BudgetExceeded, MemoryBudgets, RedisBudgets, period_keys
from tierwise_router.chat import estimate_prompt_tokens
from tierwise_router.config import Budgets
from tierwise_router.settings import Settings

pytestmark = pytest.mark.e2e
H = {"authorization": f"Bearer {KEY_A}", "content-type": "application/json"}
NOW = dt.datetime(2026, 3, 31, 23, 59, tzinfo=dt.UTC)


def _body(i: int) -> bytes:
    # fixed-length bodies → identical reservations; the fake upstream reports usage equal to them
    return orjson.dumps({"model": "tiny", "messages": [{"role": "user", "content": f"request {i:04d}"}],
                         "max_tokens": 20, "tw_test_prompt_tokens": 0})


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_200_concurrent_against_budget_of_50(backend, redis_url, tmp_path, fake_vllm, client_for):
    fake, url = fake_vllm
    per = estimate_prompt_tokens(_body(0)) + 20
    bodies = []
    for i in range(200):
        b = orjson.loads(_body(i))
        b["tw_test_prompt_tokens"] = per - 20  # actual usage == reservation: nothing is refunded
        bodies.append(orjson.dumps(b))
    assert {len(b) for b in bodies} == {len(bodies[0])}
    per = estimate_prompt_tokens(bodies[0]) + 20
    teams = [{"name": f"team-{backend}", "api_key_sha256": [hash_api_key(KEY_A)],
              "budgets": {"tokens_per_day": 50 * per}}]
    cfg = make_config([url], teams=teams)
    fake.release = asyncio.Event()  # hold every admitted call until all 200 are in flight
    s = dict(env="test", ledger_path=tmp_path / "l.jsonl", scrape_interval_s=5)
    if backend == "redis":
        s |= {"budget_backend": "redis", "redis_url": redis_url}
    # two router replicas sharing the budget store (for memory: one replica, the single-process case)
    # (each replica owns its ledger directory: the ledger takes an flock on it)
    ctxs = [client_for(Settings(**(s | {"ledger_path": tmp_path / f"r{i}" / "l.jsonl"})), cfg, now=lambda: NOW)
            for i in range(2 if backend == "redis" else 1)]
    clients = [await c.__aenter__() for c in ctxs]
    try:
        async def one(i: int) -> httpx.Response:
            return await clients[i % len(clients)].post("/v1/chat/completions", content=bodies[i], headers=H)

        tasks = [asyncio.create_task(one(i)) for i in range(200)]
        # every request either is rejected (done) or reaches the held upstream; then release them
        for _ in range(3000):
            if sum(t.done() for t in tasks) + len(fake.calls) >= 200:
                break
            await asyncio.sleep(0.01)
        fake.release.set()
        rs = await asyncio.gather(*tasks)
    finally:
        for c in ctxs:
            await c.__aexit__(None, None, None)
    ok = [r for r in rs if r.status_code == 200]
    rejected = [r for r in rs if r.status_code != 200]
    assert len(ok) == 50
    assert len(rejected) == 150
    assert all(r.status_code == 429 and r.json()["error"]["code"] == "budget_tokens_per_day" for r in rejected)
    assert len(fake.calls) == 50
    if backend == "redis":
        store = RedisBudgets(redis_url)
        try:
            used_tokens, _ = await store.usage(f"team-{backend}", NOW)
        finally:
            await store.aclose()
        assert used_tokens == 50 * per  # never above the budget, exactly the 50 admitted calls


async def test_memory_budget_settles_and_keeps_period_of_reservation():
    b = MemoryBudgets()
    budgets = Budgets(tokens_per_day=100, usd_per_month="1")
    r = await b.reserve("t", budgets, 80, 500, NOW)
    assert not isinstance(r, BudgetExceeded)
    assert isinstance(await b.reserve("t", budgets, 30, 1, NOW), BudgetExceeded)
    await b.settle(r, 10, 50)  # actual usage smaller: the difference is refunded to the reserving period
    assert await b.usage("t", NOW) == (10, 50)
    later = NOW + dt.timedelta(minutes=5)  # next day and next month
    assert period_keys("t", later) != period_keys("t", NOW)
    assert await b.usage("t", later) == (0, 0)
    ex = await b.reserve("t", Budgets(usd_per_month="0.000001"), 1, 2000, later)
    assert isinstance(ex, BudgetExceeded) and ex.budget == "usd_per_month" and ex.limit == 1000
