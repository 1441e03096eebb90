"""A loopback stand-in for the inference Gateway (Gateway API Inference Extension) in front of Tier 1.

Like an HTTPRoute that matches ``X-Gateway-Model-Name``, it answers 404 to a call whose header is
missing or names another model (Envoy's "no route"), and records every header it saw. Behind it, either
a real upstream (``backend``: the request is proxied as is, streamed responses chunk by chunk) or a
scripted OpenAI/vLLM-shaped answer (``text``, streamed in ``delta_chars``-sized deltas). ``mode``
injects what a saturated or broken Gateway does: ``429`` (the endpoint picker shed the request),
``503``, ``hang`` (no answer until ``release`` is set)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

HEADER = "X-Gateway-Model-Name"


@dataclass
class StubGateway:
    model: str | None = "tiny"  # None: no routing on the header (a plain vLLM-shaped upstream)
    backend: str | None = None
    mode: str = "ok"  # ok | 429 | 503 | hang
    text: str = "hello from the gateway"
    delta_chars: int = 3
    seen: list[str | None] = field(default_factory=list)  # X-Gateway-Model-Name of each chat call
    bodies: list[dict] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    _session: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        a = web.Application()
        a.router.add_post("/v1/chat/completions", self.chat)
        a.router.add_get("/health", self.health)
        a.on_cleanup.append(self._close)
        return a

    async def _close(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    def _routed(self, request: web.Request) -> bool:
        return self.model is None or request.headers.get(HEADER) == self.model

    async def health(self, request: web.Request) -> web.Response:
        if not self._routed(request):
            return web.Response(status=404, text="no route")
        return web.Response(text="ok")

    async def chat(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request.headers.get(HEADER))
        raw = await request.read()
        body = json.loads(raw)
        self.bodies.append(body)
        if not self._routed(request):
            return web.Response(status=404, text="no route")
        if self.mode == "429":
            return web.json_response({"error": {"message": "inference pool saturated", "code": 429}}, status=429)
        if self.mode == "503":
            return web.Response(status=503, text="upstream connect error or disconnect/reset before headers")
        if self.mode == "hang":
            await self.release.wait()
        if self.backend is not None:
            return await self._proxy(request, raw, body)
        return await self._scripted(request, body)

    async def _proxy(self, request: web.Request, raw: bytes, body: dict) -> web.StreamResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.post(self.backend + "/v1/chat/completions", data=raw,
                                      headers={"content-type": "application/json"}) as up:
            if not body.get("stream"):
                return web.Response(body=await up.read(), status=up.status, content_type="application/json")
            resp = web.StreamResponse(status=up.status, headers={"content-type": up.headers.get("content-type", "")})
            await resp.prepare(request)
            async for chunk in up.content.iter_any():
                await resp.write(chunk)
            await resp.write_eof()
            return resp

    async def _scripted(self, request: web.Request, body: dict) -> web.StreamResponse:
        pt, ct = 9, max(1, len(self.text) // 4)
        usage = {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}
        if not body.get("stream"):
            return web.json_response({
                "id": "chatcmpl-gw", "object": "chat.completion", "created": 1, "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": self.text},
                             "finish_reason": "stop"}], "usage": usage})
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)

        def frame(obj: dict) -> bytes:
            return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"

        def chunk(delta: dict, finish: str | None = None) -> bytes:
            return frame({"id": "chatcmpl-gw", "object": "chat.completion.chunk", "created": 1, "model": body["model"],
                          "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]})

        await resp.write(chunk({"role": "assistant", "content": ""}))
        for i in range(0, len(self.text), self.delta_chars):
            await resp.write(chunk({"content": self.text[i:i + self.delta_chars]}))
        await resp.write(chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            await resp.write(frame({"id": "chatcmpl-gw", "object": "chat.completion.chunk", "created": 1,
                                    "model": body["model"], "choices": [], "usage": usage}))
        await resp.write(b"data: [DONE]\n\n")
        return resp
