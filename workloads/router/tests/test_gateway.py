"""Tier 1 through the inference Gateway (routing.gateway_url, gateway.py): the model header, the same API and
metrics, and fallback to Tier 2 before the first byte on 429 / 5xx / timeout. The Gateway is a loopback stub
that routes only on X-Gateway-Model-Name (gateway_stub.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from conftest import KEY_A, make_config, serve
from gateway_stub import HEADER, StubGateway
from pydantic import ValidationError

from tierwise_router.upstreams.h1 import H1Pool

H = {"authorization": f"Bearer {KEY_A}"}
MSG = [{"role": "user", "content": "Say hi."}]


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[StubGateway, str]]:
    g = StubGateway()
    runner, url = await serve(g.app())
    yield g, url
    g.release.set()
    await runner.cleanup()


def gw_config(gurl: str, burl: str | None = None, **routing):
    # the endpoints are a port nobody listens on: with a gateway they must not be used
    return make_config(["http://127.0.0.1:9"], burl, routing={"gateway_url": gurl, **routing})


def sse_data(text: str) -> list[str]:
    return [ln[6:] for ln in text.splitlines() if ln.startswith("data: ")]


async def test_tier1_goes_through_the_gateway_with_the_model_header(settings, gateway, client_for):
    g, gurl = gateway
    async with client_for(settings, gw_config(gurl)) as c:
        r = await c.post("/v1/chat/completions", headers=H, json={"model": "tiny:billing", "messages": MSG})
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == g.text
        assert r.headers["x-tierwise-route"] == "tier1:tiny:billing"
        assert r.headers["x-tierwise-upstream"] == gurl
        # streamed: the aiohttp path carries the header too
        r = await c.post("/v1/chat/completions", headers=H, json={"model": "tiny", "messages": MSG, "stream": True})
        assert r.status_code == 200 and sse_data(r.text)[-1] == "[DONE]"
        m = (await c.get("/metrics")).text
    assert g.seen == ["tiny", "tiny"]
    assert [b["model"] for b in g.bodies] == ["billing", "tiny"]  # the served name stays in the body, as without
    assert 'tierwise_router_requests_total{model="tiny",status="200",team="team-a",tier="1"} 2.0' in m
    assert "tierwise_router_upstream_waiting" not in m.replace("# HELP tierwise_router_upstream_waiting", "") \
        .replace("# TYPE tierwise_router_upstream_waiting", ""), "the gateway is never scraped as a vLLM replica"


async def test_readyz_probes_the_gateway_with_the_header(settings, gateway, client_for):
    g, gurl = gateway
    async with client_for(settings, gw_config(gurl)) as c:
        r = await c.get("/readyz")
    assert r.status_code == 200 and r.json()["checks"][gurl] is True and len(g.seen) == 0


@pytest.mark.parametrize("stream", [False, True])
async def test_gateway_429_falls_back_to_tier2_and_never_opens_the_breaker(settings, gateway, fake_bedrock,
                                                                          client_for, stream):
    g, gurl = gateway
    g.mode = "429"
    fb, burl = fake_bedrock
    async with client_for(settings, gw_config(gurl, burl)) as c:  # breaker_failures = 3
        for _ in range(5):
            r = await c.post("/v1/chat/completions", headers=H,
                             json={"model": "tiny", "messages": MSG, "stream": stream})
            assert r.status_code == 200, r.text
            assert r.headers["x-tierwise-tier"] == "2" and r.headers["x-tierwise-fallback"] == "saturated"
            if stream:
                assert "Bonjour" in "".join(json.loads(d)["choices"][0]["delta"].get("content") or ""
                                            for d in sse_data(r.text)[:-1] if json.loads(d)["choices"])
        m = (await c.get("/metrics")).text
    assert len(g.seen) == 5, "a saturated gateway answered: its breaker stays closed, every call tries it first"
    assert 'tierwise_router_fallbacks_total{reason="saturated"} 5.0' in m
    assert 'tierwise_router_upstream_errors_total{kind="status",upstream="%s"} 5.0' % gurl in m


async def test_gateway_5xx_falls_back_and_opens_its_breaker(settings, gateway, fake_bedrock, client_for):
    g, gurl = gateway
    g.mode = "503"
    _, burl = fake_bedrock
    async with client_for(settings, gw_config(gurl, burl)) as c:
        for _ in range(5):
            r = await c.post("/v1/chat/completions", headers=H, json={"model": "tiny", "messages": MSG})
            assert r.status_code == 200 and r.headers["x-tierwise-tier"] == "2"
        m = (await c.get("/metrics")).text
    assert len(g.seen) == 3 and r.headers["x-tierwise-fallback"] == "breaker_open"
    assert 'tierwise_router_fallbacks_total{reason="tier1_status"} 3.0' in m


async def test_gateway_timeout_falls_back_before_the_first_byte(settings, gateway, fake_bedrock, client_for):
    g, gurl = gateway
    g.mode = "hang"
    _, burl = fake_bedrock
    cfg = gw_config(gurl, burl)
    cfg = cfg.model_copy(update={"models": [cfg.models[0].model_copy(update={"timeout_s": 0.3}), cfg.models[1]]})
    async with client_for(settings, cfg) as c:
        for stream in (False, True):
            r = await c.post("/v1/chat/completions", headers=H,
                             json={"model": "tiny", "messages": MSG, "stream": stream})
            assert r.status_code == 200 and r.headers["x-tierwise-fallback"] == "tier1_timeout"


async def test_gateway_4xx_other_than_429_is_passed_through(settings, gateway, fake_bedrock, client_for):
    g, gurl = gateway
    g.model = "another-model"  # the route matches another model's header: the gateway's 404
    _, burl = fake_bedrock
    async with client_for(settings, gw_config(gurl, burl)) as c:
        r = await c.post("/v1/chat/completions", headers=H, json={"model": "tiny", "messages": MSG})
    assert r.status_code == 404 and r.headers["x-tierwise-tier"] == "1"


def test_fails_on_a_gateway_url_that_is_not_a_plain_http_url():
    with pytest.raises(ValidationError, match="gateway_url"):
        make_config(["http://127.0.0.1:9"], routing={"gateway_url": "not a url"})
    with pytest.raises(ValidationError, match="must be http://"):
        make_config(["http://127.0.0.1:9"], routing={"gateway_url": "https://gw.example:443"})


def test_h1_pool_frames_the_gateway_header_and_refuses_header_injection():
    p = H1Pool("http://gw:80", extra_headers={HEADER: "tiny"})
    head = p._head("/v1/chat/completions", 2)
    assert b"\r\nX-Gateway-Model-Name: tiny\r\n" in head and head.endswith(b"Content-Length: 2\r\n\r\n")
    with pytest.raises(ValueError, match="bad extra header"):
        H1Pool("http://gw:80", extra_headers={HEADER: "tiny\r\nX-Evil: 1"})
