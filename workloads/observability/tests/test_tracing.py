"""GenAI semantic-convention spans, checked with the OTel SDK's in-memory exporter."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tierwise_observability import tracing


@pytest.fixture
def traced() -> tuple[object, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = tracing.make_tracer_provider("tierwise-router", environment="test")
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


REQUEST = {"model": "auto", "max_tokens": 64, "temperature": 0.2, "stream": False,
           "messages": [{"role": "user", "content": "my card 4111 1111 1111 1111 was charged twice"}]}
RESPONSE = {"id": "chatcmpl-1", "model": "mistral-24b", "choices": [{"finish_reason": "stop", "message": {}}],
            "usage": {"prompt_tokens": 31, "completion_tokens": 12, "total_tokens": 43}}


def test_chat_span_follows_genai_conventions(traced) -> None:
    tracer, exp = traced
    with tracing.chat_span(tracer, model="mistral-24b", provider=tracing.PROVIDER_VLLM, request=REQUEST,
                           team="billing", tier=1, server_address="vllm-mistral-24b.tierwise.svc",
                           server_port=8000) as s:
        s.record_response(RESPONSE)
        s.record_cost(0.0000129)
    (span,) = exp.get_finished_spans()
    assert span.name == "chat mistral-24b"
    assert span.kind is SpanKind.CLIENT
    a = dict(span.attributes)
    assert a == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "vllm", "gen_ai.request.model": "mistral-24b",
        "gen_ai.request.max_tokens": 64, "gen_ai.request.temperature": 0.2, "gen_ai.request.stream": False,
        "server.address": "vllm-mistral-24b.tierwise.svc", "server.port": 8000,
        "tierwise.team": "billing", "tierwise.tier": 1,
        "gen_ai.response.model": "mistral-24b", "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 31, "gen_ai.usage.output_tokens": 12, "tierwise.cost_usd": 0.0000129}
    assert span.resource.attributes["service.name"] == "tierwise-router"
    assert "4111" not in repr(span.to_json()), "prompt text must never reach a span"


def test_failed_call_records_error_type_and_reraises(traced) -> None:
    tracer, exp = traced

    class UpstreamError(Exception):
        code = "upstream_unavailable"

    with pytest.raises(UpstreamError):
        with tracing.chat_span(tracer, model="claude", provider=tracing.PROVIDER_BEDROCK) as s:
            s.record_fallback("saturated")
            raise UpstreamError("down")
    (span,) = exp.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "upstream_unavailable"
    assert span.attributes["gen_ai.provider.name"] == "aws.bedrock"
    assert span.attributes["tierwise.fallback"] == "saturated"
    assert [e.name for e in span.events] == ["tierwise.fallback", "exception"]


def test_agent_chain_nests_and_crosses_services_by_traceparent(traced) -> None:
    tracer, exp = traced
    with tracing.agent_span(tracer, "support-agent", conversation_id="conv-7") as agent:
        with tracing.chat_span(tracer, model="auto", provider=tracing.PROVIDER_VLLM):
            headers = tracing.inject_headers({"content-type": "application/json"})
        # ...the guardrails service receives `headers` and continues the same trace
        with tracing.guardrail_span(tracer, "input", team="billing",
                                    context=tracing.extract_context(headers)) as g:
            g.set_attribute("tierwise.guardrails.decision", "redact")
        with tracing.retrieval_span(tracer, "faq", top_k=5) as r:
            r.set_attribute("tierwise.rag.hits", 3)
        with tracing.tool_span(tracer, "lookup_invoice", call_id="call_1"):
            pass
    spans = {s.name: s for s in exp.get_finished_spans()}
    assert set(spans) == {"invoke_agent support-agent", "chat auto", "guardrail input", "retrieval faq",
                          "execute_tool lookup_invoice"}
    root = spans["invoke_agent support-agent"]
    assert root.attributes["gen_ai.conversation.id"] == "conv-7"
    assert headers["traceparent"].split("-")[1] == format(root.context.trace_id, "032x")
    for name in ("chat auto", "retrieval faq", "execute_tool lookup_invoice"):
        assert spans[name].parent.span_id == root.context.span_id, name
    # the remote parent is the chat span whose context was injected
    assert spans["guardrail input"].parent.span_id == spans["chat auto"].context.span_id
    assert spans["retrieval faq"].attributes["gen_ai.operation.name"] == "retrieval"
    assert spans["retrieval faq"].attributes["gen_ai.data_source.id"] == "faq"
    assert spans["execute_tool lookup_invoice"].attributes["gen_ai.tool.call.id"] == "call_1"
