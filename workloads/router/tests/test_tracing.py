"""GenAI spans (tracing.py) exported to an in-memory OpenTelemetry exporter: one span per chat call with
the gen_ai.* attributes, for Tier 1, a streamed call (ended after its last byte) and a fallback to Tier 2."""

from __future__ import annotations


import pytest
from conftest import KEY_A, make_config
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode


H = {"authorization": f"Bearer {KEY_A}"}
MSG = [{"role": "user", "content": "Say hi."}]


@pytest.fixture
def spans():
    exp = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exp))
    yield tp, exp
    tp.shutdown()


async def test_one_genai_span_per_chat_call(settings, fake_vllm, fake_bedrock, client_for, spans):
    fake, url = fake_vllm
    _, burl = fake_bedrock
    tp, exp = spans
    async with client_for(settings, make_config([url], burl), tracer_provider=tp) as c:
        r = await c.post("/v1/chat/completions", headers={**H, "x-request-id": "rid-1"},
                         json={"model": "tiny:billing", "messages": MSG, "max_tokens": 5, "temperature": 0})
        assert r.status_code == 200
        r = await c.post("/v1/chat/completions", headers=H,
                         json={"model": "tiny", "messages": MSG, "stream": True, "max_tokens": 4})
        assert r.status_code == 200
        fake.mode = "error500"
        r = await c.post("/v1/chat/completions", headers=H, json={"model": "tiny", "messages": MSG})
        assert r.headers["x-tierwise-tier"] == "2"
        r = await c.post("/v1/chat/completions", headers=H, json={"model": "nope", "messages": MSG})
        assert r.status_code == 404  # refused before any model call: no span
    got = exp.get_finished_spans()
    assert [s.name for s in got] == ["chat tiny:billing", "chat tiny", "chat tiny"]
    a = dict(got[0].attributes)
    assert got[0].kind == SpanKind.CLIENT
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.system"] == "vllm" == a["gen_ai.provider.name"]
    assert a["gen_ai.request.model"] == "tiny:billing" and a["gen_ai.response.model"] == "tiny:billing"
    assert a["gen_ai.request.max_tokens"] == 5 and a["gen_ai.request.temperature"] == 0
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (7, 5)  # the fake's usage
    assert a["tierwise.team"] == "team-a" and a["tierwise.tier"] == 1 and a["tierwise.request_id"] == "rid-1"
    assert a["server.address"] == url and a["tierwise.cost_usd"] > 0
    s = dict(got[1].attributes)
    assert s["gen_ai.request.stream"] is True and (s["gen_ai.usage.input_tokens"], s["gen_ai.usage.output_tokens"]) == (7, 4)
    f = dict(got[2].attributes)
    assert f["gen_ai.system"] == "aws.bedrock" and f["tierwise.fallback"] == "tier1_status"
    assert (f["gen_ai.usage.input_tokens"], f["gen_ai.usage.output_tokens"]) == (11, 4)  # FakeBedrock's usage
    assert all(x.status.status_code != StatusCode.ERROR for x in got)
    assert not any("content" in k or "prompt" in k for x in got for k in x.attributes), "no text in spans"


async def test_a_failed_call_ends_its_span_with_an_error(settings, fake_vllm, client_for, spans):
    fake, url = fake_vllm
    fake.mode = "error500"
    tp, exp = spans
    async with client_for(settings, make_config([url]), tracer_provider=tp) as c:  # no Tier 2
        r = await c.post("/v1/chat/completions", headers=H, json={"model": "tiny", "messages": MSG})
        assert r.status_code == 503
    (sp,) = exp.get_finished_spans()
    assert sp.status.status_code == StatusCode.ERROR and sp.attributes["http.response.status_code"] == 503


async def test_no_tracer_no_spans(settings, fake_vllm, client_for, spans):
    tp, exp = spans
    async with client_for(settings, make_config([fake_vllm[1]])) as c:
        st = c._transport.app.state.router
        assert st.tracer is None
        r = await c.post("/v1/chat/completions", headers=H, json={"model": "tiny", "messages": MSG})
        assert r.status_code == 200
    assert exp.get_finished_spans() == ()
