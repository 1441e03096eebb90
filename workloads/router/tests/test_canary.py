"""Adapter canaries (canary.py): the router honours the split the adapter pipeline writes
(``tierwise adapters rollout --routes-out``, schema tierwise.adapter-routes/v1), per request and
deterministically in the request id. The documents here are written literally in that format: the
router shares the data format with workloads/distill, never its code."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from conftest import KEY_A, make_config
from pydantic import ValidationError

from tierwise_router.canary import AdapterRoutes, RoutesError, parse_document, pick
from tierwise_router.config import AdapterSplit

H = {"authorization": f"Bearer {KEY_A}"}
MSG = [{"role": "user", "content": "Say hi."}]


def doc(routes: dict, model: str = "tiny") -> dict:
    return {"schema": "tierwise.adapter-routes/v1", "model": model, "generated_at": "2026-12-03T00:00:00+00:00",
            "routes": routes}


CANARY = {"billing": [{"served": "billing-v2", "version": 2, "weight": 0.9},
                      {"served": "billing-v3", "version": 3, "weight": 0.1}]}


def test_pick_is_deterministic_per_request_id_and_converges_to_the_weights():
    splits = parse_document(doc(CANARY), "tiny", ["billing", "support"])["billing"]
    ids = [f"req-{i}" for i in range(20000)]
    first = [pick(splits, "billing", r) for r in ids]
    assert first == [pick(splits, "billing", r) for r in ids]  # same id → same version (client retries)
    share = Counter(first)["billing-v3"] / len(ids)
    assert 0.09 < share < 0.11, share
    # a different adapter with the same ids draws independently
    other = [pick(splits, "support", r) for r in ids]
    assert other != first


@pytest.mark.parametrize("bad, match", [
    ({**doc(CANARY), "schema": "tierwise.adapter-routes/v2"}, "schema must be"),
    (doc(CANARY, model="other"), "this router's Tier 1 is 'tiny'"),
    (doc({"billing": [{"served": "billing-v2", "weight": 0.5}]}), "sum to 1"),
    (doc({"ghost": [{"served": "ghost-v1", "weight": 1.0}]}), "not adapters of tiny"),
    (doc({"billing": [{"served": "billing-v2", "weight": 1.0, "extra": 1}]}), "extra"),
])
def test_fails_on_a_bad_routes_document(bad, match):
    with pytest.raises(RoutesError, match=match):
        parse_document(bad, "tiny", ["billing", "support"])


def test_fails_on_inline_routes_that_do_not_sum_to_one_or_name_an_unknown_adapter():
    with pytest.raises(ValidationError, match="sum to 1"):
        make_config(["http://127.0.0.1:9"], routing={"adapter_routes": {"billing": [{"served": "billing-v2",
                                                                                     "weight": 0.7}]}})
    with pytest.raises(ValidationError, match="not an adapter of tiny"):
        make_config(["http://127.0.0.1:9"], routing={"adapter_routes": {"ghost": [{"served": "g-v1", "weight": 1}]}})


def test_a_bad_file_keeps_the_last_good_routes(tmp_path):
    p = tmp_path / "routes.json"
    p.write_text(json.dumps(doc(CANARY)))
    inline = {"support": [AdapterSplit(served="support-v1", weight=1.0)]}
    ar = AdapterRoutes(inline, "tiny", ["billing", "support"], p)
    assert ar.reload() and ar.served("support", "x") == "support-v1"
    assert {ar.served("billing", f"r{i}") for i in range(200)} == {"billing-v2", "billing-v3"}
    p.write_text("{not json")
    assert not ar.reload()
    assert {ar.served("billing", f"r{i}") for i in range(200)} == {"billing-v2", "billing-v3"}
    assert ar.served(None, "x") is None and ar.served("plain", "x") == "plain"


async def test_router_sends_each_request_to_the_version_its_id_draws(settings, fake_vllm, client_for, tmp_path):
    fake, url = fake_vllm
    p = tmp_path / "adapter-routes.json"
    p.write_text(json.dumps(doc(CANARY)))
    cfg = make_config([url], routing={"adapter_routes_file": str(p)})
    splits = parse_document(doc(CANARY), "tiny", ["billing", "support"])["billing"]
    async with client_for(settings, cfg) as c:
        st = c._transport.app.state.router
        want = []
        for i in range(60):
            rid = f"canary-{i}"
            want.append(pick(splits, "billing", rid))
            r = await c.post("/v1/chat/completions", headers={**H, "x-request-id": rid},
                             json={"model": "tiny:billing", "messages": MSG, "stream": i % 2 == 1})
            assert r.status_code == 200, r.text
            assert r.headers["x-tierwise-route"] == "tier1:tiny:billing"  # the logical adapter, as before
            assert r.headers["x-tierwise-adapter-served"] == want[-1]
        assert [b["model"] for b in fake.calls] == want
        assert set(want) == {"billing-v2", "billing-v3"}
        # finish the rollout: the pipeline rewrites the file with the new version at 1.0
        p.write_text(json.dumps(doc({"billing": [{"served": "billing-v3", "version": 3, "weight": 1.0}]})))
        assert st.adapter_routes.reload()
        fake.calls.clear()
        for i in range(10):
            r = await c.post("/v1/chat/completions", headers={**H, "x-request-id": f"after-{i}"},
                             json={"model": "tiny:billing", "messages": MSG})
        assert {b["model"] for b in fake.calls} == {"billing-v3"}
        # an adapter without a split is sent under its own name (and the header is absent)
        r = await c.post("/v1/chat/completions", headers=H, json={"model": "tiny:support", "messages": MSG})
        assert fake.calls[-1]["model"] == "support" and "x-tierwise-adapter-served" not in r.headers
