"""OpenTelemetry spans with the GenAI semantic conventions, for the router, guardrails and RAG.

Span shapes (semconv `gen_ai` attributes from `opentelemetry-semantic-conventions`):

| operation            | span name                         | kind     | key attributes                              |
|----------------------|-----------------------------------|----------|---------------------------------------------|
| chat (vLLM/Bedrock)  | `chat {gen_ai.request.model}`     | CLIENT   | gen_ai.operation.name=chat, provider.name, request.model/max_tokens/temperature/stream, response.model/id/finish_reasons, usage.input_tokens/output_tokens, server.address/port, error.type |
| agent step           | `invoke_agent {gen_ai.agent.name}`| INTERNAL | gen_ai.agent.name, gen_ai.conversation.id   |
| tool call            | `execute_tool {gen_ai.tool.name}` | INTERNAL | gen_ai.tool.name, gen_ai.tool.call.id       |
| RAG retrieval        | `retrieval {collection}`          | CLIENT   | gen_ai.data_source.id, tierwise.rag.top_k / .hits |
| guardrail check      | `guardrail {direction}`           | CLIENT   | tierwise.guardrails.direction / .decision   |

tierwise adds bounded attributes: `tierwise.team`, `tierwise.tier`, `tierwise.cost_usd`,
`tierwise.fallback`. Prompt and completion text is never recorded (the logging policy: guardrails
and RAG handle user data); only token counts, models and decisions.

Export: `make_tracer_provider(service, otlp_endpoint=...)` sends OTLP/HTTP to any collector or
straight to Langfuse (`https://<langfuse>/api/public/otel`, header `Authorization: Basic
base64(public_key:secret_key)`). Context crosses services in W3C `traceparent` headers:
`inject_headers()` on the caller (router → guardrails/RAG), `extract_context()` on the callee.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as GA
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

#: gen_ai.provider.name values for our upstreams (Bedrock is a well-known value; vLLM is not, so
#: the self-hosted tier reports its own name, as the conventions allow).
PROVIDER_BEDROCK = GA.GenAiProviderNameValues.AWS_BEDROCK.value
PROVIDER_VLLM = "vllm"

_REQUEST_PARAMS = {"max_tokens": GA.GEN_AI_REQUEST_MAX_TOKENS, "max_completion_tokens": GA.GEN_AI_REQUEST_MAX_TOKENS,
                   "temperature": GA.GEN_AI_REQUEST_TEMPERATURE, "top_p": GA.GEN_AI_REQUEST_TOP_P,
                   "seed": GA.GEN_AI_REQUEST_SEED, "stream": GA.GEN_AI_REQUEST_STREAM}


def make_tracer_provider(service_name: str, *, otlp_endpoint: str | None = None,
                         headers: Mapping[str, str] | None = None, exporter: SpanExporter | None = None,
                         environment: str | None = None) -> TracerProvider:
    """A provider owned by the app (create it in the factory, shut it down in the lifespan)."""
    attrs = {"service.name": service_name}
    if environment:
        attrs["deployment.environment.name"] = environment
    provider = TracerProvider(resource=Resource.create(attrs))
    if exporter is None and otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # extra: [otlp]

        exporter = OTLPSpanExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/traces", headers=dict(headers or {}))
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


class ChatSpan:
    """Handle on a live `chat` span: record the response, cost and fallback as they become known."""

    def __init__(self, span: Span) -> None:
        self.span = span

    def record_response(self, response: Mapping[str, Any]) -> None:
        """From an OpenAI-shaped chat completion (or the final streamed chunk with usage)."""
        if response.get("model"):
            self.span.set_attribute(GA.GEN_AI_RESPONSE_MODEL, str(response["model"]))
        if response.get("id"):
            self.span.set_attribute(GA.GEN_AI_RESPONSE_ID, str(response["id"]))
        reasons = [c.get("finish_reason") for c in response.get("choices") or [] if c.get("finish_reason")]
        if reasons:
            self.span.set_attribute(GA.GEN_AI_RESPONSE_FINISH_REASONS, reasons)
        usage = response.get("usage") or {}
        self.record_usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))

    def record_usage(self, input_tokens: int | None, output_tokens: int | None) -> None:
        if input_tokens is not None:
            self.span.set_attribute(GA.GEN_AI_USAGE_INPUT_TOKENS, int(input_tokens))
        if output_tokens is not None:
            self.span.set_attribute(GA.GEN_AI_USAGE_OUTPUT_TOKENS, int(output_tokens))

    def record_cost(self, usd: float) -> None:
        self.span.set_attribute("tierwise.cost_usd", float(usd))

    def record_fallback(self, reason: str) -> None:
        self.span.set_attribute("tierwise.fallback", reason)
        self.span.add_event("tierwise.fallback", {"reason": reason})


def _fail(span: Span, exc: BaseException) -> None:
    span.set_attribute("error.type", getattr(exc, "code", None) or type(exc).__qualname__)
    span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))
    span.record_exception(exc)


@contextlib.contextmanager
def chat_span(tracer: trace.Tracer, *, model: str, provider: str, request: Mapping[str, Any] | None = None,
              team: str | None = None, tier: int | None = None, server_address: str | None = None,
              server_port: int | None = None, operation: str = GA.GenAiOperationNameValues.CHAT.value,
              context: Context | None = None) -> Iterator[ChatSpan]:
    """One model call. `request` is the OpenAI-shaped body: only parameters are read, never messages."""
    attrs: dict[str, Any] = {GA.GEN_AI_OPERATION_NAME: operation, GA.GEN_AI_PROVIDER_NAME: provider,
                             GA.GEN_AI_REQUEST_MODEL: model}
    for k, attr in _REQUEST_PARAMS.items():
        v = (request or {}).get(k)
        if v is not None and not isinstance(v, dict):
            attrs[attr] = v
    if server_address:
        attrs["server.address"] = server_address
    if server_port:
        attrs["server.port"] = server_port
    if team:
        attrs["tierwise.team"] = team
    if tier is not None:
        attrs["tierwise.tier"] = tier
    with tracer.start_as_current_span(f"{operation} {model}", kind=SpanKind.CLIENT, attributes=attrs,
                                      context=context, record_exception=False, set_status_on_exception=False) as span:
        try:
            yield ChatSpan(span)
        except BaseException as e:
            _fail(span, e)
            raise


@contextlib.contextmanager
def agent_span(tracer: trace.Tracer, agent_name: str, *, conversation_id: str | None = None) -> Iterator[Span]:
    attrs: dict[str, Any] = {GA.GEN_AI_OPERATION_NAME: GA.GenAiOperationNameValues.INVOKE_AGENT.value,
                             GA.GEN_AI_AGENT_NAME: agent_name}
    if conversation_id:
        attrs[GA.GEN_AI_CONVERSATION_ID] = conversation_id
    with _internal(tracer, f"invoke_agent {agent_name}", attrs) as span:
        yield span


@contextlib.contextmanager
def tool_span(tracer: trace.Tracer, tool_name: str, *, call_id: str | None = None) -> Iterator[Span]:
    attrs: dict[str, Any] = {GA.GEN_AI_OPERATION_NAME: GA.GenAiOperationNameValues.EXECUTE_TOOL.value,
                             GA.GEN_AI_TOOL_NAME: tool_name}
    if call_id:
        attrs[GA.GEN_AI_TOOL_CALL_ID] = call_id
    with _internal(tracer, f"execute_tool {tool_name}", attrs) as span:
        yield span


@contextlib.contextmanager
def retrieval_span(tracer: trace.Tracer, collection: str, *, top_k: int | None = None,
                   context: Context | None = None) -> Iterator[Span]:
    attrs: dict[str, Any] = {GA.GEN_AI_OPERATION_NAME: GA.GenAiOperationNameValues.RETRIEVAL.value,
                             GA.GEN_AI_DATA_SOURCE_ID: collection}
    if top_k is not None:
        attrs["tierwise.rag.top_k"] = top_k
    with _internal(tracer, f"retrieval {collection}", attrs, kind=SpanKind.CLIENT, context=context) as span:
        yield span


@contextlib.contextmanager
def guardrail_span(tracer: trace.Tracer, direction: str, *, team: str | None = None,
                   context: Context | None = None) -> Iterator[Span]:
    """Set `tierwise.guardrails.decision` on the yielded span when the verdict is known."""
    attrs: dict[str, Any] = {"tierwise.guardrails.direction": direction}
    if team:
        attrs["tierwise.team"] = team
    with _internal(tracer, f"guardrail {direction}", attrs, kind=SpanKind.CLIENT, context=context) as span:
        yield span


@contextlib.contextmanager
def _internal(tracer: trace.Tracer, name: str, attrs: dict[str, Any], kind: SpanKind = SpanKind.INTERNAL,
              context: Context | None = None) -> Iterator[Span]:
    with tracer.start_as_current_span(name, kind=kind, attributes=attrs, context=context, record_exception=False,
                                      set_status_on_exception=False) as span:
        try:
            yield span
        except BaseException as e:
            _fail(span, e)
            raise


def inject_headers(headers: dict[str, str] | None = None, context: Context | None = None) -> dict[str, str]:
    """Add W3C trace context (`traceparent`, `tracestate`) to outgoing HTTP headers."""
    h = dict(headers or {})
    propagate.inject(h, context=context)
    return h


def extract_context(headers: Mapping[str, str]) -> Context:
    """The caller's trace context from incoming headers (pass as `context=` to the first span)."""
    return propagate.extract(dict(headers))
