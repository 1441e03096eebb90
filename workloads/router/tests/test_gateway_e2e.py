"""Router e2e with the cluster's Tier-1 shape: Tier 1 through an upstream URL that stands for the inference
Gateway (gateway_stub.StubGateway: routes only on X-Gateway-Model-Name, proxies to the real vLLM on CPU),
the real guardrails service (its own venv, on loopback) checking input and streamed output, Tier 2 on the
Bedrock wire fake, and the GenAI spans exported to an in-memory OpenTelemetry exporter."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest
from conftest import KEY_A, make_config, serve
from gateway_stub import StubGateway
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

H = {"authorization": f"Bearer {KEY_A}"}
MSG = [{"role": "user", "content": "Say hi."}]
CARD = "4111 1111 1111 1111"


@pytest.fixture
async def gateway(vllm_url: str) -> AsyncIterator[tuple[StubGateway, str]]:
    g = StubGateway(backend=vllm_url)
    runner, url = await serve(g.app())
    yield g, url
    g.release.set()
    await runner.cleanup()


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exp = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exp))
    yield tp, exp
    tp.shutdown()


def events(text: str) -> list[tuple[str | None, str]]:
    out = []
    for block in text.split("\n\n"):
        if block.strip():
            ev = next((ln[6:].strip() for ln in block.split("\n") if ln.startswith("event:")), None)
            out.append((ev, "\n".join(ln[5:].strip() for ln in block.split("\n") if ln.startswith("data:"))))
    return out


def content(evs: list[tuple[str | None, str]]) -> str:
    return "".join((c.get("delta") or {}).get("content") or "" for ev, d in evs if ev is None and d.startswith("{")
                   for c in json.loads(d).get("choices") or [])


def config(gurl: str, burl: str, guardrails: str):
    return make_config(["http://127.0.0.1:9"], burl, routing={"gateway_url": gurl},
                       hooks={"guardrails_url": guardrails, "timeout_s": 10})


async def test_tier1_through_the_gateway_to_real_vllm_with_spans(settings, gateway, fake_bedrock, guardrails_url,
                                                                 client_for, spans):
    g, gurl = gateway
    _, burl = fake_bedrock
    tp, exp = spans
    async with client_for(settings, config(gurl, burl, guardrails_url), tracer_provider=tp) as c:
        r = await c.post("/v1/chat/completions", headers=H,
                         json={"model": "tiny:billing", "messages": MSG, "max_tokens": 8, "temperature": 0})
        assert r.status_code == 200, r.text
        assert r.headers["x-tierwise-route"] == "tier1:tiny:billing" and r.headers["x-tierwise-upstream"] == gurl
        assert r.json()["usage"]["completion_tokens"] > 0
        r = await c.post("/v1/chat/completions", headers=H,
                         json={"model": "tiny", "messages": MSG, "max_tokens": 8, "stream": True})
        assert r.status_code == 200 and events(r.text)[-1] == (None, "[DONE]")
        assert (await c.get("/readyz")).json()["checks"][gurl] is True  # vLLM /health through the route
    assert g.seen == ["tiny", "tiny"] and [b["model"] for b in g.bodies] == ["billing", "tiny"]
    got = exp.get_finished_spans()
    assert [s.name for s in got] == ["chat tiny:billing", "chat tiny"]
    for s in got:
        a = s.attributes
        assert a["gen_ai.system"] == "vllm" and a["server.address"] == gurl
        assert a["gen_ai.usage.input_tokens"] > 0 and 0 < a["gen_ai.usage.output_tokens"] <= 8


@pytest.mark.parametrize("stream", [False, True])
async def test_gateway_429_goes_to_tier2_before_the_first_byte(settings, gateway, fake_bedrock, guardrails_url,
                                                               client_for, spans, stream):
    g, gurl = gateway
    g.mode = "429"
    fb, burl = fake_bedrock
    fb.text = "hello from tier two"  # the real NER reads "Bedrock" in the default text as a LOCATION
    tp, exp = spans
    async with client_for(settings, config(gurl, burl, guardrails_url), tracer_provider=tp) as c:
        r = await c.post("/v1/chat/completions", headers=H, json={"model": "tiny", "messages": MSG, "stream": stream})
        assert r.status_code == 200, r.text
        assert r.headers["x-tierwise-tier"] == "2" and r.headers["x-tierwise-fallback"] == "saturated"
        text = content(events(r.text)) if stream else r.json()["choices"][0]["message"]["content"]
        assert text == "hello from tier two"
        assert 'tierwise_router_fallbacks_total{reason="saturated"} 1.0' in (await c.get("/metrics")).text
    assert g.seen == ["tiny"]
    (sp,) = exp.get_finished_spans()
    assert sp.attributes["gen_ai.system"] == "aws.bedrock" and sp.attributes["tierwise.fallback"] == "saturated"


async def test_streamed_pii_is_redacted_and_a_credential_cuts_the_stream(settings, fake_bedrock, guardrails_url,
                                                                         client_for):
    # the Gateway answers with a scripted stream (a model that leaks): the real guardrails service judges it
    g = StubGateway(text=f"Of course. Your card number is {CARD}. Anything else?", delta_chars=4)
    runner, gurl = await serve(g.app())
    _, burl = fake_bedrock
    try:
        async with client_for(settings, config(gurl, burl, guardrails_url)) as c:
            r = await c.post("/v1/chat/completions", headers=H,
                             json={"model": "tiny", "messages": MSG, "stream": True})
            assert r.status_code == 200
            evs = events(r.text)
            said = content(evs)
            assert CARD not in r.text and "1111" not in r.text
            assert said.startswith("Of course. Your card number is ") and said.endswith(". Anything else?")
            assert evs[-1] == (None, "[DONE]")
            g.text = "Use this key. aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8Rt3pLm2. Done."
            r = await c.post("/v1/chat/completions", headers=H,
                             json={"model": "tiny", "messages": MSG, "stream": True})
            evs = events(r.text)
            assert "wJalrXUtnFEMI" not in r.text and content(evs) == "Use this key. "
            assert evs[-1][0] == "error"
            assert json.loads(evs[-1][1])["error"]["code"] == "guardrail_output_block"
    finally:
        await runner.cleanup()
