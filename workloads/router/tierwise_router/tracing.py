"""OpenTelemetry GenAI spans for chat calls (OpenTelemetry API/SDK directly: workloads never import each
other, so this mirrors the span shape of workloads/observability's tracing helpers instead of importing them).

One span per ``POST /v1/chat/completions`` that reached a model call, named ``chat {gen_ai.request.model}``,
kind CLIENT, ended when the answer is complete (for a stream: after its last byte):

- ``gen_ai.operation.name`` = ``chat``; ``gen_ai.system`` and ``gen_ai.provider.name`` = ``vllm`` (Tier 1) or
  ``aws.bedrock`` (Tier 2) — the tier that answered (after a fallback, Tier 2);
- ``gen_ai.request.model`` (what the caller asked for: ``auto``, ``tiny:billing``, …), ``gen_ai.request.max_tokens``
  / ``temperature`` / ``top_p`` / ``seed`` / ``stream`` when given; ``gen_ai.response.model`` (catalog model that
  answered, ``:adapter`` for an adapter);
- ``gen_ai.usage.input_tokens`` / ``gen_ai.usage.output_tokens`` (summed over the Tier-1 and Tier-2 legs of an
  escalated call; absent when the usage is unknown, e.g. an interrupted stream);
- ``server.address`` (the upstream: replica, Gateway or Bedrock model), ``tierwise.team``, ``tierwise.tier``,
  ``tierwise.fallback``, ``tierwise.cost_usd``, ``tierwise.request_id``, ``http.response.status_code``;
  ``error.type`` and status ERROR when the call failed.

No prompt or completion text is recorded (the logging policy). Export: the app factory's
``tracer_provider`` (tests pass one with an in-memory exporter), else OTLP/HTTP to
``TIERWISE_ROUTER_OTEL_ENDPOINT`` (``{endpoint}/v1/traces``); with neither, the router makes no spans at all.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

PROVIDER = {1: "vllm", 2: "aws.bedrock"}
_PARAMS = {"max_tokens": "gen_ai.request.max_tokens", "max_completion_tokens": "gen_ai.request.max_tokens",
           "temperature": "gen_ai.request.temperature", "top_p": "gen_ai.request.top_p", "seed": "gen_ai.request.seed",
           "stream": "gen_ai.request.stream"}


def otlp_provider(service_name: str, endpoint: str, environment: str) -> TracerProvider:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    p = TracerProvider(resource=Resource.create({"service.name": service_name,
                                                 "deployment.environment.name": environment}))
    p.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")))
    return p


def tracer(provider: Any) -> trace.Tracer:
    return provider.get_tracer("tierwise_router")


class ChatSpan:
    """A live chat span; usage and cost accumulate over the call's legs, ``end`` is idempotent."""

    __slots__ = ("span", "tokens_in", "tokens_out", "nano", "usage_known")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.tokens_in = self.tokens_out = self.nano = 0
        self.usage_known = True

    def record_usage(self, usage: tuple[int, int] | None, nano: int) -> None:
        if usage is None:
            self.usage_known = False
        else:
            self.tokens_in += usage[0]
            self.tokens_out += usage[1]
        self.nano += nano

    def end(self, *, tier: int | None, response_model: str | None, status: int, upstream: str | None,
            fallback: str | None, error: str | None = None) -> None:
        s = self.span
        if not s.is_recording():
            return
        if tier is not None:
            s.set_attribute("gen_ai.system", PROVIDER[tier])
            s.set_attribute("gen_ai.provider.name", PROVIDER[tier])
            s.set_attribute("tierwise.tier", tier)
        if response_model:
            s.set_attribute("gen_ai.response.model", response_model)
        if self.usage_known and (self.tokens_in or self.tokens_out):
            s.set_attribute("gen_ai.usage.input_tokens", self.tokens_in)
            s.set_attribute("gen_ai.usage.output_tokens", self.tokens_out)
        if self.nano:
            s.set_attribute("tierwise.cost_usd", self.nano / 1e9)
        if upstream:
            s.set_attribute("server.address", upstream)
        if fallback:
            s.set_attribute("tierwise.fallback", fallback)
        s.set_attribute("http.response.status_code", status)
        if error or status >= 400:
            s.set_attribute("error.type", error or str(status))
            s.set_status(Status(StatusCode.ERROR, error or str(status)))
        s.end()


def start_chat(t: trace.Tracer | None, req: dict, team: str, request_id: str) -> ChatSpan | None:
    if t is None:
        return None
    model = str(req.get("model"))
    attrs: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model, "tierwise.team": team,
                             "tierwise.request_id": request_id}
    for k, a in _PARAMS.items():
        v = req.get(k)
        if isinstance(v, (bool, int, float)):
            attrs[a] = v
    return ChatSpan(t.start_span(f"chat {model}", kind=SpanKind.CLIENT, attributes=attrs))
