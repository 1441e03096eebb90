"""Loopback stand-ins used by the tests: an OpenAI/vLLM-shaped upstream and a Bedrock Converse
server that speaks the real wire protocol (REST-JSON + AWS event-stream framing for ConverseStream)."""

from __future__ import annotations

import asyncio
import json
import zlib
from dataclasses import dataclass, field

from aiohttp import web


# ------------------------------------------------------------------------------------ fake vLLM
@dataclass
class FakeVllm:
    mode: str = "ok"  # ok | error500 | die_midstream | http400
    waiting: int = 0
    calls: list[dict] = field(default_factory=list)
    release: asyncio.Event | None = None  # when set, requests wait for it

    def app(self) -> web.Application:
        a = web.Application()
        a.router.add_post("/v1/chat/completions", self.chat)
        a.router.add_get("/metrics", self.metrics)
        a.router.add_get("/health", lambda r: web.Response(text="ok"))
        return a

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=f'vllm:num_requests_waiting{{model_name="tiny"}} {self.waiting}.0\n'
                                 f'vllm:num_requests_running{{model_name="tiny"}} 0.0\n')

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.calls.append(body)
        if self.release is not None:
            await self.release.wait()
        if self.mode == "error500":
            return web.json_response({"error": {"message": "boom"}}, status=500)
        if self.mode == "http400":
            return web.json_response({"error": {"message": "context too long", "type": "BadRequestError"}},
                                     status=400)
        pt = int(body.get("tw_test_prompt_tokens", 7))
        ct = int(body.get("max_tokens") or 5)
        words = ["hello", "from", body["model"]]
        if not body.get("stream"):
            return web.json_response({
                "id": "chatcmpl-fake", "object": "chat.completion", "created": 1, "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": " ".join(words)},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}})
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)

        def chunk(delta: dict, finish: str | None = None) -> bytes:
            return b"data: " + json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1,
                                           "model": body["model"], "choices": [{"index": 0, "delta": delta,
                                                                                "finish_reason": finish}]},
                                          separators=(",", ":")).encode() + b"\n\n"

        await resp.write(chunk({"role": "assistant", "content": ""}))
        for i, w in enumerate(words):
            await resp.write(chunk({"content": (" " if i else "") + w}))
            if self.mode == "die_midstream" and i == 1:
                request.transport.close()  # abrupt: no [DONE], connection dropped
                return resp
        await resp.write(chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            await resp.write(b"data: " + json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1,
                                                     "model": body["model"], "choices": [],
                                                     "usage": {"prompt_tokens": pt, "completion_tokens": ct,
                                                               "total_tokens": pt + ct}},
                                                    separators=(",", ":")).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        return resp


# ------------------------------------------------------------------------------------ Bedrock wire
def event_frame(event_type: str, payload: dict, message_type: str = "event") -> bytes:
    """One AWS event-stream message (prelude + CRC, string headers, JSON payload, message CRC)."""
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": message_type}
    if message_type == "exception":
        headers = {":exception-type": event_type, ":content-type": "application/json", ":message-type": "exception"}
    hb = b"".join(bytes([len(k)]) + k.encode() + b"\x07" + len(v).to_bytes(2, "big") + v.encode()
                  for k, v in headers.items())
    body = json.dumps(payload).encode()
    total = 12 + len(hb) + len(body) + 4
    prelude = total.to_bytes(4, "big") + len(hb).to_bytes(4, "big")
    prelude += zlib.crc32(prelude).to_bytes(4, "big")
    msg = prelude + hb + body
    return msg + zlib.crc32(msg).to_bytes(4, "big")


@dataclass
class FakeBedrock:
    throttle_first: int = 0  # answer ThrottlingException to the first N calls
    stream_error_after: int | None = None  # send a modelStreamErrorException after N text deltas
    tool_call: bool = False
    requests: list[dict] = field(default_factory=list)
    text: str = "Bonjour from Bedrock"

    def app(self) -> web.Application:
        a = web.Application()
        a.router.add_post("/model/{model_id}/converse", self.converse)
        a.router.add_post("/model/{model_id}/converse-stream", self.converse_stream)
        return a

    def _throttled(self) -> web.Response | None:
        if self.throttle_first > 0:
            self.throttle_first -= 1
            return web.json_response({"message": "Too many requests, please wait before trying again."},
                                     status=429, headers={"x-amzn-ErrorType": "ThrottlingException"})
        return None

    async def converse(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append({"model_id": request.match_info["model_id"], **body})
        if (t := self._throttled()) is not None:
            return t
        content: list[dict] = [{"text": self.text}]
        stop = "end_turn"
        if self.tool_call:
            content = [{"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}]
            stop = "tool_use"
        return web.json_response({"output": {"message": {"role": "assistant", "content": content}},
                                  "stopReason": stop, "usage": {"inputTokens": 11, "outputTokens": 4,
                                                                "totalTokens": 15},
                                  "metrics": {"latencyMs": 12}})

    async def converse_stream(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append({"model_id": request.match_info["model_id"], **body})
        if (t := self._throttled()) is not None:
            return t
        resp = web.StreamResponse(headers={"content-type": "application/vnd.amazon.eventstream"})
        await resp.prepare(request)
        await resp.write(event_frame("messageStart", {"role": "assistant"}))
        for i, w in enumerate(self.text.split(" ")):
            if self.stream_error_after is not None and i == self.stream_error_after:
                await resp.write(event_frame("modelStreamErrorException", {"message": "model crashed"},
                                             message_type="exception"))
                await resp.write_eof()
                return resp
            await resp.write(event_frame("contentBlockDelta",
                                         {"contentBlockIndex": 0, "delta": {"text": (" " if i else "") + w}}))
        await resp.write(event_frame("contentBlockStop", {"contentBlockIndex": 0}))
        await resp.write(event_frame("messageStop", {"stopReason": "end_turn"}))
        await resp.write(event_frame("metadata", {"usage": {"inputTokens": 11, "outputTokens": 3, "totalTokens": 14},
                                                  "metrics": {"latencyMs": 10}}))
        await resp.write_eof()
        return resp
