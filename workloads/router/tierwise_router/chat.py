"""POST /v1/chat/completions — the hot path.

Order: auth → parse/validate → resolve model (``auto`` → triage) → pace (RPM/TPM) → hooks →
reserve budget → call Tier 1 (fallback to Tier 2 before the first byte) → settle, ledger, metrics.
Bodies are parsed once with orjson and validated with pydantic; upstream responses are passed
through as bytes, parsed only to read usage.

The endpoint is a raw ASGI app (``chat_asgi``), reached before Starlette's middleware stack and
router (see app.py). Profiled with py-spy at 500 req/s on the 2-core loopback benchmark, Starlette's
ServerErrorMiddleware → ExceptionMiddleware → Router → request_response → Request layers were ~14 % of
the router's samples, for a route whose errors we already turn into OpenAI envelopes ourselves.

This module owns the front door (auth, body, validation, model resolution incl. triage and the
cascade plan, pacing, input hooks, the budget reservation); calls.py the upstream calls, accounting
and non-streaming answers; streaming.py the streamed ones.
"""

from __future__ import annotations

import hashlib
import logging
import time

import orjson
from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from . import cascade, tracing
from .calls import CallCtx, Reply, Route, reserve_budget
from .config import BedrockModel, Team
from .hooks import HookError, augment, guard, passage_messages, retrieve
from .observability import event
from .ratelimit import Admit, Reject
from .schemas import ChatRequest, error_response, validation_message
from .state import RouterState


def authenticate(st: RouterState, auth: str) -> Team:
    """``auth`` is the Authorization header value ("" when absent)."""
    key = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    team = st.keys.get(hashlib.sha256(key.encode()).hexdigest()) if key else None
    if team is None:
        raise Reply(error_response(401, "Invalid or missing API key.", "invalid_request_error", "invalid_api_key"))
    return team


def last_user_text(messages: list[dict]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, str):
                return c
            if isinstance(c, list):
                return " ".join(p.get("text", "") for p in c if isinstance(p, dict))
    return ""


def estimate_prompt_tokens(body: bytes) -> int:
    # Conservative: BPE tokenizers average ~4 bytes/token on English; JSON framing adds bytes,
    # so bytes/3 over-estimates. Settlement corrects to actual usage.
    return len(body) // 3 + 16


async def resolve(st: RouterState, team: Team, req: dict, text: str) -> Route:
    name = req["model"]
    if team.allowed_models is not None and name not in team.allowed_models:
        raise Reply(error_response(403, f"Team {team.name!r} may not use model {name!r}.", "permission_error",
                                   "model_not_allowed", "model"))
    t1 = st.tier1
    if name == "auto":
        rt = st.config.routing
        score, domain = await st.triage.ascore(text)  # off the event loop when the scorer is not trivial
        unsure = (st.triage.threshold_for_share(rt.target_tier2_share + rt.cascade.unsure_share)
                  if team.mode == "triage+cascade" else st.threshold)
        p = cascade.plan(team, score, st.threshold, unsure, st.tier2 is not None)
        st.metrics.child(st.metrics.triage, str(p.tier), domain).inc()
        if p.tier == 2 and st.tier2 is not None:
            return Route(2, st.tier2, None, "auto", score)
        return Route(1, t1, rt.domain_adapters.get(domain, team.default_adapter), "auto", score, cascade=p.cascade)
    base, _, adapter = name.partition(":")
    if base == t1.name and (not adapter or adapter in t1.adapters):
        return Route(1, t1, adapter or None, "explicit")
    if not adapter and name in t1.adapters:
        return Route(1, t1, name, "explicit")
    m = st.config.model(name)
    if isinstance(m, BedrockModel):
        return Route(2, m, None, "explicit")
    raise Reply(error_response(404, f"The model {name!r} does not exist.", "invalid_request_error",
                               "model_not_found", "model"))


class ClientGone(Exception):
    """The client disconnected before its request body arrived."""


async def read_body(receive: Receive, limit: int) -> bytes:
    msg = await receive()
    if msg["type"] != "http.request":
        raise ClientGone
    body: bytes = msg.get("body", b"")
    if not msg.get("more_body", False):
        if len(body) > limit:
            raise Reply(error_response(413, "Request body too large.", "invalid_request_error", "body_too_large"))
        return body
    parts, n = [body], len(body)
    while msg.get("more_body", False):
        msg = await receive()
        if msg["type"] != "http.request":
            raise ClientGone
        b = msg.get("body", b"")
        n += len(b)
        if n > limit:  # stop reading: never buffer more than the limit
            raise Reply(error_response(413, "Request body too large.", "invalid_request_error", "body_too_large"))
        parts.append(b)
    return b"".join(parts)


async def chat_asgi(st: RouterState, scope: Scope, receive: Receive, send: Send) -> None:
    """POST /v1/chat/completions as a raw ASGI app (no Request object, no middleware stack)."""
    t0 = time.perf_counter()
    auth, rid = "", ""
    for k, v in scope["headers"]:
        if k == b"authorization":
            auth = v.decode("latin-1")
        elif k == b"x-request-id":
            rid = v.decode("latin-1")
    if not rid:
        rid = "%016x" % st.ids.getrandbits(64)  # uuid4: ~120 µs (urandom) here
    try:
        resp = await _handle(st, auth, receive, rid, t0)
    except Reply as r:
        resp = r.response
        resp.headers["x-request-id"] = rid
    except ClientGone:
        return
    except Exception as e:  # noqa: BLE001 — the envelope, never a bare 500 page
        event(st.log, "unhandled_error", logging.ERROR, request_id=rid, route="/v1/chat/completions",
              error=e.__class__.__name__, detail=str(e)[:200])
        resp = error_response(500, "Internal error.", "api_error", "internal_error", headers={"x-request-id": rid})
    await resp(scope, receive, send)


async def _handle(st: RouterState, auth: str, receive: Receive, rid: str, t0: float) -> Response:
    m = st.metrics
    team = authenticate(st, auth)
    if st.ledger is not None and st.ledger.full:  # cannot account for it: refuse before any model runs
        raise Reply(error_response(503, "The usage ledger's local backlog is full (durable store unreachable); "
                                   "retry later.", "api_error", "ledger_unavailable"))
    raw = await read_body(receive, st.settings.max_body_bytes)
    try:
        req = orjson.loads(raw)
        if not isinstance(req, dict):
            raise Reply(error_response(400, "Request body must be a JSON object.", "invalid_request_error",
                                       "invalid_request"))
        parsed = ChatRequest.model_validate(req)
    except orjson.JSONDecodeError:
        raise Reply(error_response(400, "Request body is not valid JSON.", "invalid_request_error", "invalid_json"))
    except ValidationError as e:
        msg, param = validation_message(e)
        raise Reply(error_response(400, msg, "invalid_request_error", "invalid_request", param))
    if parsed.model_extra and st.log.isEnabledFor(logging.DEBUG):
        event(st.log, "unknown_request_fields", logging.DEBUG, request_id=rid, fields=sorted(parsed.model_extra))
    messages: list[dict] = req["messages"]
    text = last_user_text(messages)
    route = await resolve(st, team, req, text)
    max_out = parsed.max_completion_tokens or parsed.max_tokens or st.config.routing.default_max_tokens
    est_in = estimate_prompt_tokens(raw)

    # Front door pacing (RPM/TPM) with a bounded wait queue. The queue-depth gauge only moves for a
    # request that actually waits (an immediate admit has no await, so it was never observable).
    adm = st.pacer.try_admit(team.name, team.rate_limits, est_in + max_out)
    if isinstance(adm, Reject):
        m.child(m.rejections, team.name, adm.limit).inc()
        raise Reply(error_response(429, f"Rate limit {adm.limit!r} exceeded for team {team.name!r}.",
                                   "rate_limit_error", f"rate_limit_{adm.limit}",
                                   headers={"retry-after": str(adm.retry_after_s)}))
    if isinstance(adm, Admit) and adm.wait_s > 0:
        qd = m.child(m.queue_depth, team.name)
        qd.inc()
        try:
            await st.pacer.wait(team.name, adm.wait_s)
        finally:
            qd.dec()

    # Hooks (skipped when not configured).
    hooks = st.config.hooks
    try:
        v = await guard(st.session, hooks, "input", team.name, messages=messages, request_id=rid)
        if v is not None:
            if v.decision in ("block", "escalate"):
                m.child(m.rejections, team.name, "guardrail").inc()
                ticket = f" (review ticket {v.ticket_id})" if v.ticket_id else ""
                raise Reply(error_response(400, f"The request was {v.decision}ed by the guardrails{ticket}.",
                                           "invalid_request_error", f"guardrail_{v.decision}"))
            if v.decision == "redact" and v.messages:
                messages = v.messages
                text = last_user_text(messages)  # retrieval must not see what the guardrails redacted
        passages = await retrieve(st.session, hooks, st.rag_key, text, request_id=rid)
        if passages:
            # Retrieved text is data: checked on the document channel for instructions aimed at the model.
            pv = await guard(st.session, hooks, "input", team.name, messages=passage_messages(passages), request_id=rid)
            if pv is not None and pv.decision in ("block", "escalate"):
                m.child(m.rejections, team.name, "guardrail").inc()
                ticket = f" (review ticket {pv.ticket_id})" if pv.ticket_id else ""
                raise Reply(error_response(400, f"A retrieved document was {pv.decision}ed by the guardrails{ticket}.",
                                           "invalid_request_error", f"guardrail_{pv.decision}"))
            if pv is not None and pv.decision == "redact" and pv.messages:
                passages = [{**p, "text": r["content"]} for p, r in zip(passages, pv.messages)]
            messages = augment(messages, passages)
    except HookError as e:
        if e.status == 413:  # too large to check is not "unavailable": never skip the check for it
            raise Reply(error_response(413, "The request is too large for the guardrails check.",
                                       "invalid_request_error", "guardrail_input_too_large"))
        if not hooks.fail_open:
            raise Reply(error_response(503, f"A required hook is unavailable: {e}", "api_error", "hook_unavailable"))
        event(st.log, "hook_skipped", logging.WARNING, request_id=rid, error=str(e))
    req["messages"] = messages

    reservation = await reserve_budget(st, team, route.model, est_in, max_out, rid)
    ctx = CallCtx(st, team, rid, t0, parsed.stream, bool(parsed.stream_options and parsed.stream_options.include_usage),
                  est_in, max_out)
    ctx.span = tracing.start_chat(st.tracer, req, team.name, rid)
    try:
        if parsed.stream:
            return await ctx.stream(route, req, reservation)
        return await ctx.complete(route, req, reservation)
    except Exception as e:
        if ctx.span is not None:  # ended already when the call reached _finish; this covers the rest
            ctx.span.end(tier=None, response_model=None, fallback=ctx.fallback, upstream=None,
                         status=e.response.status_code if isinstance(e, Reply) else 500, error=e.__class__.__name__)
        raise
