"""POST /v1/chat/completions — the hot path.

Order: auth → parse/validate → resolve model (``auto`` → triage) → pace (RPM/TPM) → hooks →
reserve budget → call Tier 1 (fallback to Tier 2 before the first byte) → settle, ledger, metrics.
Bodies are parsed once with orjson and validated with pydantic; upstream responses are passed
through as bytes, parsed only to read usage.

The endpoint is a raw ASGI app (``chat_asgi``), reached before Starlette's middleware stack and
router (see app.py). Profiled with py-spy at 500 req/s on the 2-core loopback benchmark, Starlette's
ServerErrorMiddleware → ExceptionMiddleware → Router → request_response → Request layers were ~14 % of
the router's samples, for a route whose errors we already turn into OpenAI envelopes ourselves.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
from pydantic import ValidationError
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from . import balancer, cascade
from . import stream_guard, tracing
from .budgets import BudgetExceeded, BudgetStoreUnavailable, Reservation
from .config import BedrockModel, Team, VllmModel, nano_to_usd_str
from .hooks import HookError, augment, guard, retrieve
from .ledger import wait_settled
from .observability import event, event_after
from .ratelimit import Admit, Reject
from .schemas import ChatRequest, error_response, validation_message
from .state import RouterState
from .upstreams import UpstreamError
from .upstreams import bedrock as br
from .upstreams import vllm as vl


@dataclass
class Route:
    tier: int
    model: VllmModel | BedrockModel
    adapter: str | None
    reason: str  # "auto" | "explicit" | fallback reason
    score: float | None = None
    cascade: bool = False  # Tier 1 first, escalate on low confidence (cascade.py)


class Reply(Exception):
    def __init__(self, response: Response):
        self.response = response


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
            messages = augment(messages, passages)
    except HookError as e:
        if e.status == 413:  # too large to check is not "unavailable": never skip the check for it
            raise Reply(error_response(413, "The request is too large for the guardrails check.",
                                       "invalid_request_error", "guardrail_input_too_large"))
        if not hooks.fail_open:
            raise Reply(error_response(503, f"A required hook is unavailable: {e}", "api_error", "hook_unavailable"))
        event(st.log, "hook_skipped", logging.WARNING, request_id=rid, error=str(e))
    req["messages"] = messages

    reservation = await _reserve(st, team, route.model, est_in, max_out)
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


async def _reserve(st: RouterState, team: Team, model: VllmModel | BedrockModel, est_in: int,
                   max_out: int) -> Reservation:
    est_nano = st.prices[model.name].cost_nano(est_in, max_out)
    try:
        r = await st.budgets.reserve(team.name, team.budgets, est_in + max_out, est_nano, st.now())
    except BudgetStoreUnavailable as e:  # cannot account for it: refuse before any model runs
        event(st.log, "budget_store_unavailable", logging.ERROR, team=team.name, error=str(e)[:200])
        raise Reply(error_response(503, "The budget store is unreachable; retry later.", "api_error",
                                   "budget_store_unavailable", headers={"retry-after": "1"})) from e
    if isinstance(r, BudgetExceeded):
        st.metrics.child(st.metrics.rejections, team.name, r.budget).inc()
        unit = "tokens" if r.budget == "tokens_per_day" else "USD"
        used = r.used if unit == "tokens" else nano_to_usd_str(r.used)
        lim = r.limit if unit == "tokens" else nano_to_usd_str(r.limit)
        raise Reply(error_response(429, f"Budget {r.budget!r} exhausted for team {team.name!r} "
                                        f"(used {used} of {lim} {unit}).",
                                   "insufficient_quota", f"budget_{r.budget}", headers={"retry-after": "3600"}))
    return r


class CallCtx:
    def __init__(self, st: RouterState, team: Team, rid: str, t0: float, stream: bool, want_usage: bool,
                 est_in: int, max_out: int) -> None:
        self.st, self.team, self.rid, self.t0 = st, team, rid, t0
        self.want_usage = want_usage
        self.est_in, self.max_out = est_in, max_out
        self.fallback: str | None = None
        self.replica: balancer.Replica | None = None
        self.span: tracing.ChatSpan | None = None  # GenAI span (tracing.py), when tracing is on
        self.served_adapter: str | None = None  # the adapter version a canary split chose (canary.py)
        self.verdict: cascade.Verdict | None = None  # set when a cascaded call was judged
        self.ledger_state: str | None = None  # durable | pending (ack=durable only)

    # ------------------------------------------------------------------ routing helpers
    def _pick_replica(self, route: Route, req: dict) -> balancer.Replica | str:
        rt = self.st.config.routing
        key = balancer.affinity_key(_prefix_text(req["messages"]), route.adapter, rt.prefix_block_chars,
                                    rt.prefix_blocks)
        r = balancer.choose(self.st.replicas, key, rt.saturation_waiting)
        if r is None:
            return "saturated" if all(x.breaker.available for x in self.st.replicas) else "breaker_open"
        if not r.breaker.allow():
            return "breaker_open"
        return r

    def _tier1_body(self, route: Route, req: dict, stream: bool) -> bytes:
        body = dict(req)
        ar = self.st.adapter_routes
        self.served_adapter = ar.served(route.adapter, self.rid) if ar is not None else route.adapter
        body["model"] = self.served_adapter or route.model.served_model_name
        if stream:
            so = dict(body.get("stream_options") or {})
            so["include_usage"] = True  # always: the router settles budgets from it
            body["stream_options"] = so
        if route.cascade:
            body = cascade.tier1_body(body, stream)
        return orjson.dumps(body)

    async def _to_tier2(self, reason: str, reservation: Reservation) -> tuple[Route, Reservation]:
        st = self.st
        if st.tier2 is None:
            await st.budgets.release(reservation)
            raise Reply(error_response(503, f"Tier 1 unavailable ({reason}) and no Tier 2 is configured.",
                                       "api_error", "upstream_unavailable"))
        st.metrics.child(st.metrics.fallbacks, reason).inc()
        self.fallback = reason
        await st.budgets.release(reservation)
        return Route(2, st.tier2, None, reason), await _reserve(st, self.team, st.tier2, self.est_in, self.max_out)

    async def _escalate(self, route: Route, reservation: Reservation,
                        usage: tuple[int, int] | None) -> tuple[Route, Reservation] | None:
        """Tier 1 was not confident: reserve Tier 2, then settle and ledger what Tier 1 used (status
        ``escalated``; unknown usage keeps the whole reservation). None when Tier 2 has no budget left:
        the Tier-1 answer stands."""
        st = self.st
        try:
            r2 = await _reserve(st, self.team, st.tier2, self.est_in, self.max_out)  # type: ignore[arg-type]
        except Reply:
            return None
        await self._account(route, reservation, usage, "escalated")
        self.fallback = "cascade_low_confidence"
        st.metrics.child(st.metrics.fallbacks, self.fallback).inc()
        return Route(2, st.tier2, None, "cascade", route.score), r2  # type: ignore[arg-type]

    async def _judge_stream(self, route: Route, s: vl.VllmStream, pick: balancer.Replica, reservation: Reservation,
                            req: dict) -> cascade.JudgedStream | Response | tuple[Route, Reservation]:
        """Buffer a cascaded Tier-1 stream until its verdict (nothing has reached the client yet). Returns
        the stream to relay (kept), or the Tier-2 route and reservation (escalated, or Tier 1 failed)."""
        js = cascade.JudgedStream(s, self.st.config.routing.cascade, bool(req.get("logprobs")))
        try:
            self.verdict = v = await js.judge()
        except Exception as e:  # noqa: BLE001 — aiohttp payload/timeout errors included: still before the first byte
            js.close()
            pick.inflight -= 1
            err = e if isinstance(e, UpstreamError) else UpstreamError("connect", f"tier-1 stream failed: {e.__class__.__name__}")
            return await self._tier1_failed(route, pick, err, reservation, stream=True)
        if v.escalate:
            esc = await self._escalate(route, reservation, js.usage)
            if esc is not None:
                js.close()  # releasing an unfinished response drops the connection: vLLM aborts the request
                pick.inflight -= 1
                pick.breaker.success()
                return esc
        return js

    async def _tier1_failed(self, route: Route, pick: balancer.Replica, e: UpstreamError, reservation: Reservation,
                            stream: bool) -> Response | tuple[Route, Reservation]:
        """A Tier-1 call failed before the first byte. A 4xx other than 429 is the request's fault: the
        replica counts as healthy and vLLM's answer is passed through. Anything else counts against the
        replica's breaker and falls back to Tier 2 (returns the new route and reservation)."""
        self._fail_upstream(pick.url, e)
        if e.kind == "status" and e.status is not None and 400 <= e.status < 500 and e.status != 429:
            pick.breaker.success()  # the replica is fine; the request is not
            await self.st.budgets.release(reservation)
            self._finish(route, e.status, stream, pick.url)
            return Response(e.body or b"", status_code=e.status, media_type="application/json",
                            headers=self._headers(route, pick.url))
        if e.kind == "status" and e.status == 429:  # saturated (the Gateway's picker sheds load so); it answered
            pick.breaker.success()
            return await self._to_tier2("saturated", reservation)
        pick.breaker.failure()
        return await self._to_tier2(f"tier1_{e.kind}", reservation)

    def _fail_upstream(self, name: str, e: UpstreamError) -> None:
        self.st.metrics.child(self.st.metrics.upstream_errors, name, e.kind).inc()

    # ------------------------------------------------------------------ accounting
    async def _account(self, route: Route, reservation: Reservation, usage: tuple[int, int] | None,
                       status: str) -> int:
        st = self.st
        if usage is None:  # unknown (interrupted stream): keep the whole reservation — never under-charge
            pt, ct = reservation.tokens, 0
            nano = reservation.nano
            await st.budgets.settle(reservation, reservation.tokens, reservation.nano)
        else:
            pt, ct = usage
            nano = st.prices[route.model.name].cost_nano(pt, ct)
            await st.budgets.settle(reservation, pt + ct, nano)
        if self.span is not None:
            self.span.record_usage(usage, nano)
        tier = str(route.tier)
        mname = route.model.name
        m = st.metrics
        m.child(m.tokens, self.team.name, mname, tier, "in").inc(pt)
        m.child(m.tokens, self.team.name, mname, tier, "out").inc(ct)
        m.child(m.cost, self.team.name, mname, tier).inc(nano / 1e9)
        if st.ledger is not None:
            ack = st.ledger.append({"ts": st.now().isoformat(), "request_id": self.rid, "team": self.team.name,
                              "model": mname, "adapter": route.adapter, "tier": route.tier,
                              "prompt_tokens": pt, "completion_tokens": ct, "cost_nano_usd": nano,
                              "usage_known": usage is not None, "status": status, "fallback": self.fallback})
            if ack is not None:
                self.ledger_state = await wait_settled(ack, st.settings.ledger_ack_timeout_s)
        return nano

    def _finish(self, route: Route, status: int, stream: bool, upstream: str) -> None:
        st = self.st
        lat = time.perf_counter() - self.t0
        m = st.metrics
        m.child(m.requests, self.team.name, route.model.name, str(route.tier), str(status)).inc()
        m.child(m.latency, str(route.tier), "1" if stream else "0").observe(lat)
        if self.span is not None:
            ad = self.served_adapter if route.tier == 1 else None
            self.span.end(tier=route.tier, response_model=route.model.name + (f":{ad}" if ad else ""), status=status,
                          upstream=upstream, fallback=self.fallback)
        # after the response is on the socket (see observability.event_after)
        event_after(st.log, "chat", request_id=self.rid, team=self.team.name, route=f"tier{route.tier}",
                    model=route.model.name, adapter=route.adapter, status=status,
                    latency_ms=round(lat * 1000, 3), upstream=upstream, fallback=self.fallback,
                    triage_score=route.score)

    def _headers(self, route: Route, upstream: str) -> dict[str, str]:
        h = {"x-request-id": self.rid, "x-tierwise-tier": str(route.tier), "x-tierwise-model": route.model.name,
             "x-tierwise-route": f"tier{route.tier}:{route.model.name}" + (f":{route.adapter}" if route.adapter else ""),
             "x-tierwise-upstream": upstream}
        if self.fallback:
            h["x-tierwise-fallback"] = self.fallback
        if route.score is not None:
            h["x-tierwise-triage-score"] = f"{route.score:.4f}"
        if route.tier == 1 and self.served_adapter != route.adapter:
            h["x-tierwise-adapter-served"] = self.served_adapter or ""
        if self.verdict is not None:
            h["x-tierwise-cascade"] = "escalated" if self.fallback == "cascade_low_confidence" else "kept"
            if self.verdict.confidence is not None:
                h["x-tierwise-confidence"] = f"{self.verdict.confidence:.6g}"
        return h

    # ------------------------------------------------------------------ non-streaming
    async def complete(self, route: Route, req: dict, reservation: Reservation) -> Response:
        if route.tier == 1:
            pick = self._pick_replica(route, req)
            if isinstance(pick, str):
                route, reservation = await self._to_tier2(pick, reservation)
            else:
                pick.inflight += 1
                try:
                    data = await vl.complete(pick.pool, self._tier1_body(route, req, False),  # type: ignore[arg-type]
                                             route.model.timeout_s)
                    pick.breaker.success()
                except UpstreamError as e:
                    r = await self._tier1_failed(route, pick, e, reservation, stream=False)
                    if isinstance(r, Response):
                        return r
                    route, reservation = r
                else:
                    obj = orjson.loads(data)
                    esc = None
                    if route.cascade:
                        self.verdict = cascade.judge_completion(obj, self.st.config.routing.cascade)
                        esc = await self._escalate(route, reservation, vl.usage_of(obj)) if self.verdict.escalate else None
                        if esc is None and not req.get("logprobs"):
                            cascade.strip_completion(obj)
                            data = orjson.dumps(obj)
                    if esc is None:
                        nano = await self._account(route, reservation, vl.usage_of(obj), "ok")
                        return await self._respond(route, data, obj, nano, pick.url)
                    route, reservation = esc
                finally:
                    pick.inflight -= 1
        return await self._complete_tier2(route, req, reservation)

    async def _call_tier2(self, route: Route, req: dict, reservation: Reservation, call, stream: bool):
        """One Bedrock call behind the Tier-2 breaker: on failure the reservation is released, the
        breaker and metrics updated, and the caller gets the OpenAI-style error. Returns (result, upstream)."""
        st = self.st
        model: BedrockModel = route.model  # type: ignore[assignment]
        upstream = f"bedrock:{model.model_id}"
        if not st.tier2_breaker.allow():
            await st.budgets.release(reservation)
            raise Reply(error_response(503, "Tier 2 circuit is open.", "api_error", "upstream_unavailable"))
        try:
            out = await call(st.bedrock[model.name], req, model.model_id, model.max_attempts, model.backoff_base_s)
            st.tier2_breaker.success()
        except UpstreamError as e:
            await st.budgets.release(reservation)
            self._fail_upstream("bedrock", e)
            if e.kind not in ("bad_request", "throttled"):
                st.tier2_breaker.failure()
            self._finish(route, e.status or 502, stream, upstream)
            raise Reply(_upstream_error(e)) from e
        return out, upstream

    async def _complete_tier2(self, route: Route, req: dict, reservation: Reservation) -> Response:
        resp, upstream = await self._call_tier2(route, req, reservation, br.converse, stream=False)
        obj = br.from_converse(resp, route.model.name)
        nano = await self._account(route, reservation, vl.usage_of(obj), "ok")
        return await self._respond(route, orjson.dumps(obj), obj, nano, upstream)

    async def _respond(self, route: Route, data: bytes, obj: dict, nano: int, upstream: str) -> Response:
        st = self.st
        hooks = st.config.hooks
        if hooks.guardrails_url is not None:
            out = "".join((c.get("message") or {}).get("content") or "" for c in obj.get("choices", []))
            try:
                v = await guard(st.session, hooks, "output", self.team.name, text=out, request_id=self.rid)
            except HookError as e:
                if not hooks.fail_open:
                    raise Reply(error_response(503, f"A required hook is unavailable: {e}", "api_error",
                                               "hook_unavailable"))
                v = None
            if v is not None and v.decision in ("block", "escalate"):
                self._finish(route, 422, False, upstream)
                raise Reply(error_response(422, f"The response was {v.decision}ed by the guardrails.",
                                           "invalid_request_error", f"guardrail_output_{v.decision}"))
            if v is not None and v.decision == "redact" and v.text is not None and obj.get("choices"):
                obj["choices"][0]["message"]["content"] = v.text
                data = orjson.dumps(obj)
        h = self._headers(route, upstream)
        h["x-tierwise-cost-usd"] = nano_to_usd_str(nano)
        if self.ledger_state is not None:
            h["x-tierwise-ledger"] = self.ledger_state
        self._finish(route, 200, False, upstream)
        return Response(data, status_code=200, media_type="application/json", headers=h)

    # ------------------------------------------------------------------ streaming
    async def stream(self, route: Route, req: dict, reservation: Reservation) -> Response:
        st = self.st
        if route.tier == 1:
            pick = self._pick_replica(route, req)
            if isinstance(pick, str):
                route, reservation = await self._to_tier2(pick, reservation)
            else:
                pick.inflight += 1
                try:
                    s = await vl.open_stream(st.session, pick.url, self._tier1_body(route, req, True),
                                             route.model.timeout_s, pick.headers)
                except UpstreamError as e:
                    pick.inflight -= 1
                    r = await self._tier1_failed(route, pick, e, reservation, stream=True)
                    if isinstance(r, Response):
                        return r
                    route, reservation = r
                else:
                    judged = await self._judge_stream(route, s, pick, reservation, req) if route.cascade else s
                    if isinstance(judged, Response):
                        return judged
                    if isinstance(judged, tuple):
                        route, reservation = judged
                    else:
                        st.metrics.child(st.metrics.ttft, "1").observe(time.perf_counter() - self.t0)
                        return StreamingResponse(self._relay_tier1(route, judged, pick, reservation),  # type: ignore[arg-type]
                                                 media_type="text/event-stream", headers=self._headers(route, pick.url))
        events, upstream = await self._call_tier2(route, req, reservation, br.converse_stream, stream=True)
        st.metrics.child(st.metrics.ttft, "2").observe(time.perf_counter() - self.t0)
        return StreamingResponse(self._relay_tier2(route, events, reservation, upstream),
                                 media_type="text/event-stream", headers=self._headers(route, upstream))

    def _relay_tier1(self, *a) -> AsyncIterator[bytes]:  # noqa: ANN002
        return self._guard_out(self._relay_tier1_raw(*a))

    def _relay_tier2(self, *a) -> AsyncIterator[bytes]:  # noqa: ANN002
        return self._guard_out(self._relay_tier2_raw(*a))

    def _guard_out(self, frames: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """Streamed output through the guardrails, per sentence (stream_guard.py), when they are configured."""
        hooks = self.st.config.hooks
        if hooks.guardrails_url is None:
            return frames
        return stream_guard.guarded(frames, stream_guard.output_check(self.st, self.team.name, self.rid),
                                    hooks.stream_window_chars)

    async def _relay_tier1_raw(self, route: Route, s: vl.VllmStream, pick: balancer.Replica,
                               reservation: Reservation) -> AsyncIterator[bytes]:
        usage: tuple[int, int] | None = None
        status, done = "interrupted", False
        try:
            async for ev in s.events():
                d = ev.data
                if d == b"[DONE]":
                    done = True
                    yield ev.raw
                    break
                if b'"usage"' in d and b'"usage":null' not in d:
                    obj = orjson.loads(d)
                    u = vl.usage_of(obj)
                    if u is not None:
                        usage = u
                        if not obj.get("choices") and not self.want_usage:
                            continue  # usage-only chunk the caller did not ask for
                if d.startswith(b'{"error"'):
                    pick.breaker.failure()
                    yield ev.raw
                    return
                yield ev.raw
            if not done:
                raise UpstreamError("protocol", "upstream stream ended without [DONE]")
            status = "ok"
            pick.breaker.success()
        except UpstreamError as e:
            pick.breaker.failure()
            self._fail_upstream(pick.url, e)
            yield _sse_error(e)
        except Exception as e:  # aiohttp errors mid-stream
            pick.breaker.failure()
            self._fail_upstream(pick.url, UpstreamError("connect", str(e)))
            yield _sse_error(UpstreamError("connect", f"tier-1 stream failed: {e.__class__.__name__}"))
        finally:
            pick.inflight -= 1
            s.close()
            await self._account(route, reservation, usage if status == "ok" else None, status)
            self._finish(route, 200 if status == "ok" else 599, True, pick.url)

    async def _relay_tier2_raw(self, route: Route, events: AsyncIterator[dict], reservation: Reservation,
                               upstream: str) -> AsyncIterator[bytes]:
        tr = br.ChunkTranslator(route.model.name)
        status = "interrupted"
        try:
            async for ev in events:
                for chunk in tr.translate(ev):
                    yield b"data: " + orjson.dumps(chunk) + b"\n\n"
            if self.want_usage:
                yield b"data: " + orjson.dumps(tr.usage_chunk()) + b"\n\n"
            yield b"data: [DONE]\n\n"
            status = "ok"
        except UpstreamError as e:
            self._fail_upstream("bedrock", e)
            self.st.tier2_breaker.failure()
            yield _sse_error(e)
        finally:
            await self._account(route, reservation, tr.usage if status == "ok" else None, status)
            self._finish(route, 200 if status == "ok" else 599, True, upstream)


def _prefix_text(messages: list[dict]) -> str:
    parts = []
    n = 0
    for m in messages:
        c = m.get("content")
        s = c if isinstance(c, str) else orjson.dumps(c).decode() if c else ""
        parts.append(s)
        n += len(s)
        if n > 4096:
            break
    return "\x1e".join(parts)


def _sse_error(e: UpstreamError) -> bytes:
    body = {"error": {"message": f"The upstream stream failed after it started: {e}", "type": "api_error",
                      "code": "stream_interrupted", "param": None}}
    return b"event: error\ndata: " + orjson.dumps(body) + b"\n\n"


def _upstream_error(e: UpstreamError) -> Response:
    if e.kind == "throttled":
        return error_response(429, str(e), "rate_limit_error", "upstream_throttled", headers={"retry-after": "1"})
    if e.kind == "bad_request":
        return error_response(400, str(e), "invalid_request_error", "upstream_rejected")
    if e.kind == "timeout":
        return error_response(504, str(e), "api_error", "upstream_timeout")
    return error_response(e.status if e.status and e.status >= 500 else 502, str(e), "api_error", "upstream_error")


