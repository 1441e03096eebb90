"""Upstream calls of one chat completion, after the front door (chat.py) has admitted it: Tier-1
replica choice, Tier-2 fallback before the first byte, the cascade's escalation (cascade.py), budget
reservation and settlement, the ledger entry, metrics, the per-request log line, and the
non-streaming answer (output guardrails, headers). The streaming half is the StreamingCalls mixin
(streaming.py).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import orjson
from starlette.responses import Response

from . import balancer, cascade, tracing
from .budgets import BudgetExceeded, BudgetStoreUnavailable, Reservation
from .config import BedrockModel, Team, VllmModel, nano_to_usd_str
from .hooks import HookError, guard
from .ledger import wait_settled
from .observability import event, event_after
from .schemas import error_response
from .state import RouterState
from .streaming import StreamingCalls
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


async def reserve_budget(st: RouterState, team: Team, model: VllmModel | BedrockModel, est_in: int,
                   max_out: int, rid: str) -> Reservation:
    est_nano = st.prices[model.name].cost_nano(est_in, max_out)
    try:
        r = await st.budgets.reserve(team.name, team.budgets, est_in + max_out, est_nano, st.now(), rid)
    except BudgetStoreUnavailable as e:  # cannot account for it: refuse before any model runs
        event(st.log, "budget_store_unavailable", logging.ERROR, request_id=rid, team=team.name,
              error=str(e)[:200])
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


class CallCtx(StreamingCalls):
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

    async def _tier1_replica(self, route: Route, req: dict,
                             reservation: Reservation) -> tuple[Route, Reservation, balancer.Replica | None]:
        """The Tier-1 replica to call; or, when none can take the request, the call moved to Tier 2
        (new route and reservation, replica None)."""
        pick = self._pick_replica(route, req)
        if isinstance(pick, str):
            route, reservation = await self._to_tier2(pick, reservation)
            return route, reservation, None
        return route, reservation, pick

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
        return Route(2, st.tier2, None, reason), await reserve_budget(st, self.team, st.tier2, self.est_in,
                                                                      self.max_out, self.rid)

    async def _escalate(self, route: Route, reservation: Reservation,
                        usage: tuple[int, int] | None) -> tuple[Route, Reservation] | None:
        """Tier 1 was not confident: reserve Tier 2, then settle and ledger what Tier 1 used (status
        ``escalated``; unknown usage keeps the whole reservation). None when Tier 2 has no budget left:
        the Tier-1 answer stands."""
        st = self.st
        try:
            r2 = await reserve_budget(st, self.team, st.tier2, self.est_in, self.max_out, self.rid)  # type: ignore[arg-type]
        except Reply:
            return None
        await self._account(route, reservation, usage, "escalated")
        self.fallback = "cascade_low_confidence"
        st.metrics.child(st.metrics.fallbacks, self.fallback).inc()
        return Route(2, st.tier2, None, "cascade", route.score), r2  # type: ignore[arg-type]

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
                    triage_score=route.score, span=self.span.span if self.span is not None else None)

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
            route, reservation, pick = await self._tier1_replica(route, req, reservation)
            if pick is not None:
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


def _upstream_error(e: UpstreamError) -> Response:
    if e.kind == "throttled":
        return error_response(429, str(e), "rate_limit_error", "upstream_throttled", headers={"retry-after": "1"})
    if e.kind == "bad_request":
        return error_response(400, str(e), "invalid_request_error", "upstream_rejected")
    if e.kind == "timeout":
        return error_response(504, str(e), "api_error", "upstream_timeout")
    return error_response(e.status if e.status and e.status >= 500 else 502, str(e), "api_error", "upstream_error")


