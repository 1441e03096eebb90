"""Config, ledger, triage, balancer, breaker, pacer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_config
from pydantic import ValidationError
from typer.testing import CliRunner

from tierwise_router import balancer
from tierwise_router.breaker import Breaker
from tierwise_router.cli import app as cli
from tierwise_router.config import RateLimits, RouterConfig, cost_nano, load_config, SelfHostedPrice, TokenPrice
from tierwise_router.ledger import Ledger, read_ledger
from tierwise_router.ratelimit import Admit, Pacer, Reject
from tierwise_router.triage import Triage


def test_fails_on_unknown_config_field_with_its_path():
    data = make_config(["http://a:8000"]).model_dump(mode="json")
    data["teams"][0]["budgets"]["usd_per_mnth"] = "5"
    with pytest.raises(ValidationError, match=r"teams\.0\.budgets\.usd_per_mnth"):
        RouterConfig.model_validate(data)


def test_fails_on_bad_references():
    with pytest.raises(ValidationError, match="not an adapter"):
        make_config(["http://a:8000"], routing={"domain_adapters": {"math": "nope"}})
    with pytest.raises(ValidationError, match="api_key_sha256"):
        make_config(["http://a:8000"], teams=[{"name": "x", "api_key_sha256": ["plaintext-key"]}])


def test_config_file_roundtrip_and_cli_check(tmp_path: Path):
    import yaml

    p = tmp_path / "router.yaml"
    p.write_text(yaml.safe_dump(make_config(["http://a:8000"], "http://b:9000").model_dump(mode="json")))
    assert load_config(p).routing.tier2_model == "claude"
    r = CliRunner().invoke(cli, ["check-config", str(p)])
    assert r.exit_code == 0 and "2 teams" in r.output
    p.write_text(p.read_text().replace("tier1_model", "tier_one_model"))
    r = CliRunner().invoke(cli, ["check-config", str(p)])
    assert r.exit_code == 1


def test_costs_are_exact_and_round_up():
    assert cost_nano(TokenPrice(input_usd_per_mtok="3", output_usd_per_mtok="15"), 1000, 100) == 4_500_000
    # 1.80 $/h over 1000 tok/s = 5e-7 $/token = 500 nano-USD
    assert cost_nano(SelfHostedPrice(gpu_hour_usd="1.80", tokens_per_s=1000), 1, 0) == 500
    assert cost_nano(SelfHostedPrice(gpu_hour_usd="1", tokens_per_s=7), 1, 0) == 39683  # 39682.5… rounded up


def test_ledger_ignores_torn_tail_and_corrupt_lines(tmp_path: Path):
    p = tmp_path / "ledger.jsonl"
    led = Ledger(p, "batch")
    for i in range(5):
        led.append({"team": "a", "model": "m", "i": i, "prompt_tokens": 1, "completion_tokens": 1, "cost_nano_usd": 2})
    led.close()
    with open(p, "ab") as fh:
        fh.write(b'0badc0de {"team":"a","forged":true}\n')
        fh.write(b'1234abcd {"team":"a","i":')  # torn write at crash time
    entries, bad = read_ledger(p)
    assert [e["i"] for e in entries] == [0, 1, 2, 3, 4] and bad == 2
    led = Ledger(p, "always")  # reopened after the "crash": the old file is sealed, appends start afresh
    led.append({"team": "a", "model": "m", "i": 5, "prompt_tokens": 0, "completion_tokens": 0, "cost_nano_usd": 0})
    led.close()
    entries, bad = read_ledger(p)
    assert [e["i"] for e in entries] == [5] and bad == 0
    (sealed,) = (tmp_path / "sealed").iterdir()
    entries, bad = read_ledger(sealed)
    assert [e["i"] for e in entries] == [0, 1, 2, 3, 4] and bad == 2
    r = CliRunner().invoke(cli, ["ledger", str(tmp_path)])
    assert json.loads(r.output)["entries"] == 6 and json.loads(r.output)["skipped_corrupt_lines"] == 2


def test_triage_artifact_threshold_and_decisions():
    t = Triage.load()
    assert t.threshold_for_share(0.0) == float("inf") and t.threshold_for_share(1.0) == float("-inf")
    ths = [t.threshold_for_share(s) for s in (0.1, 0.3, 0.5, 0.9)]
    assert ths == sorted(ths, reverse=True)
    d = t.decide("Janet has 3 apples and buys 5 more. How many apples?", -1.0, {"math": "billing"})
    assert d.tier == 2 and d.adapter is None
    d = t.decide("Janet has 3 apples and buys 5 more. How many apples does she have now?", 2.0, {"math": "billing"})
    assert d.tier == 1 and d.domain == "math" and d.adapter == "billing"
    d = t.decide("Janet has 3 apples.", -1.0, {}, tier2_available=False)
    assert d.tier == 1


def test_balancer_prefers_affinity_but_not_onto_a_loaded_replica():
    rs = [balancer.Replica(f"http://r{i}", Breaker(3, 10)) for i in range(3)]
    key = balancer.affinity_key("You are a billing agent. " * 20, "billing", 256, 2)
    first = balancer.choose(rs, key, 16)
    assert all(balancer.choose(rs, key, 16) is first for _ in range(5))  # sticky while loads are equal
    other = balancer.affinity_key("You are a billing agent. " * 20, "support", 256, 2)
    picks = {balancer.choose(rs, balancer.affinity_key(f"prompt {i}", None, 256, 2), 16).url for i in range(30)}
    assert len(picks) == 3  # different prefixes spread
    assert other != key  # adapter salts the affinity key
    first.inflight = 5  # the preferred replica is busy → load wins
    assert balancer.choose(rs, key, 16) is not first
    for r in rs:
        r.waiting = 17
    assert balancer.choose(rs, key, 16) is None  # all saturated


def test_breaker_opens_half_opens_and_closes():
    now = [0.0]
    b = Breaker(2, 10, clock=lambda: now[0])
    b.failure()
    assert b.allow()
    b.failure()
    assert b.state == "open" and not b.allow()
    now[0] = 11
    assert b.state == "half_open" and b.allow() and not b.allow()  # exactly one trial
    b.failure()
    assert b.state == "open"
    now[0] = 22
    assert b.allow()
    b.success()
    assert b.state == "closed"


def test_pacer_tpm_bounds_and_queue_limit():
    now = [0.0]
    p = Pacer(clock=lambda: now[0])
    lim = RateLimits(tpm=600, max_wait_s=10, max_queue=0)
    assert isinstance(p.try_admit("t", lim, 600), Admit)
    r = p.try_admit("t", lim, 60)  # needs 6 s of refill, but the queue allows no waiter
    assert isinstance(r, Reject) and r.limit == "queue" and r.retry_after_s == 6
    assert isinstance(p.try_admit("t", lim, 601), Reject)  # larger than a minute of TPM: never fits
    now[0] = 6.0
    assert p.try_admit("t", lim, 60) == Admit(0.0)
