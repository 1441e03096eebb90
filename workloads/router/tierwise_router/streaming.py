"""The streaming half of a call (a mixin of calls.CallCtx): open the Tier-1 stream (fallback to Tier 2
while nothing has reached the client), hold a cascaded stream until its verdict (cascade.py), and
relay: Tier-1 SSE passed through as bytes (usage read for settlement), Bedrock events translated to
OpenAI chunks, both through the streamed-output guardrails (stream_guard.py) when configured. After
the first byte an upstream failure ends the stream with an ``event: error`` frame, never a silent cut.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import orjson
from starlette.responses import Response, StreamingResponse

from . import balancer, cascade, stream_guard
from .budgets import Reservation
from .upstreams import UpstreamError
from .upstreams import bedrock as br
from .upstreams import vllm as vl

if TYPE_CHECKING:
    from .calls import Route


class StreamingCalls:
    """Methods of calls.CallCtx that serve ``stream: true``; state and the shared helpers
    (_tier1_replica, _tier1_body, _to_tier2, _escalate, _tier1_failed, _call_tier2, _account, _finish,
    _headers) live on CallCtx."""

    async def stream(self, route: Route, req: dict, reservation: Reservation) -> Response:
        st = self.st
        if route.tier == 1:
            route, reservation, pick = await self._tier1_replica(route, req, reservation)
            if pick is not None:
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


def _sse_error(e: UpstreamError) -> bytes:
    body = {"error": {"message": f"The upstream stream failed after it started: {e}", "type": "api_error",
                      "code": "stream_interrupted", "param": None}}
    return b"event: error\ndata: " + orjson.dumps(body) + b"\n\n"
