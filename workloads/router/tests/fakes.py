"""Loopback stand-ins used by the tests: an OpenAI/vLLM-shaped upstream and a Bedrock Converse
server that speaks the real wire protocol (REST-JSON + AWS event-stream framing for ConverseStream)."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import zlib
from dataclasses import dataclass, field

from aiohttp import web


# ------------------------------------------------------------------------------------ faults (tests, bench)
async def reset_mid_response(request: web.Request, body: bytes) -> web.StreamResponse:
    """Status line, headers (Content-Length of the whole ``body``) and half the body, then a TCP reset
    (SO_LINGER 0 + abort). Used by tests/test_faults.py and bench/router_faults.py (its stub process, bench/_faults_stubs.py)."""
    resp = web.StreamResponse(headers={"content-type": "application/json", "content-length": str(len(body))})
    await resp.prepare(request)
    await resp.write(body[: len(body) // 2])
    await asyncio.sleep(0.005)
    sock = request.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    request.transport.abort()
    return resp


def throttled() -> web.Response:
    """Bedrock's ThrottlingException on the wire (REST-JSON: 429 + x-amzn-ErrorType, as boto3 parses it)."""
    return web.json_response({"message": "Too many requests, please wait before trying again."},
                             status=429, headers={"x-amzn-ErrorType": "ThrottlingException"})


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
            return throttled()
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


# ------------------------------------------------------------------------------------ hook services
@dataclass
class FakeGuardrails:
    """Speaks workloads/guardrails' POST /v1/check contract and rejects what its pydantic schema rejects:
    exactly one of text/messages, message content str|None (422 otherwise); 202 + ticket for escalate;
    413 over ``max_bytes``. Decisions come from markers in the text."""

    calls: list[dict] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)
    max_bytes: int = 64 * 1024

    def app(self) -> web.Application:
        a = web.Application()
        a.router.add_post("/v1/check", self.check)
        return a

    async def check(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append(body)
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        bad = web.json_response({"detail": "validation error"}, status=422)
        if body.get("direction") not in ("input", "output") or (("text" in body) == ("messages" in body)):
            return bad
        if "messages" in body:
            msgs = body["messages"]
            if not isinstance(msgs, list) or any(not isinstance(m.get("role"), str) or
                                                 not (m.get("content") is None or isinstance(m["content"], str))
                                                 for m in msgs):
                return bad
            parts = [m.get("content") or "" for m in msgs]
        else:
            if not isinstance(body["text"], str):
                return bad
            parts = [body["text"]]
        if sum(len(p.encode()) for p in parts) > self.max_bytes:
            return web.json_response({"error": {"message": "too large", "type": "invalid_request_error",
                                                "code": "input_too_large", "param": None}}, status=413)
        joined = "\n".join(parts)
        decision = ("block" if "BLOCKME" in joined else "escalate" if "ignore previous instructions" in joined
                    else "redact" if "4111 1111 1111 1111" in joined else "allow")
        red = [p.replace("4111 1111 1111 1111", "<CREDIT_CARD>") for p in parts]
        out = {"request_id": request.headers.get("x-request-id", "gr"), "decision": decision,
               "direction": body["direction"], "team": body.get("team", ""), "findings": [], "timing_ms": {}}
        if "messages" in body:
            out["redacted_messages"] = [dict(m) | {"content": r} for m, r in zip(body["messages"], red)]
        else:
            out["redacted_text"] = red[0]
        if decision == "escalate":
            out["ticket_id"] = "tkt-1"
            return web.json_response(out, status=202, headers={"Location": "/v1/tickets/tkt-1"})
        return web.json_response(out)


@dataclass
class FakeRag:
    """Speaks workloads/rag's POST /v1/retrieve contract: bearer key → team (401 otherwise),
    ``collections`` 1..32 required (422), response ``{"object": "list", "data": [hits], ...}``."""

    api_key: str = "sk-rag-test"
    calls: list[dict] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)

    def app(self) -> web.Application:
        a = web.Application()
        a.router.add_post("/v1/retrieve", self.retrieve)
        return a

    async def retrieve(self, request: web.Request) -> web.Response:
        h = request.headers.get("authorization", "")
        self.auth.append(h)
        if h != f"Bearer {self.api_key}":
            return web.json_response({"error": {"message": "unknown API key", "type": "authentication_error",
                                                "code": "invalid_api_key", "param": None}}, status=401)
        body = await request.json()
        self.calls.append(body)
        cols = body.get("collections")
        if (not isinstance(cols, list) or not 1 <= len(cols) <= 32 or not isinstance(body.get("query"), str)
                or body.get("mode", "hybrid") not in ("hybrid", "bm25", "dense")):
            return web.json_response({"detail": "validation error"}, status=422)
        hits = [{"collection": cols[0], "version": "v1", "doc_id": "faq/refunds.md", "chunk_index": 0,
                 "text": "Refunds take 5 business days.", "headings": ["Refunds"], "score": 0.9,
                 "metadata": {}, "ingested_at": 1.0, "source_version": None, "stale": False,
                 "ranks": {"bm25": 1, "dense": 1}}][: int(body.get("top_k", 10))]
        return web.json_response({"object": "list", "data": hits, "versions": {cols[0]: "v1"},
                                  "timings_ms": {"bm25_ms": 0.1}})
