"""Tier-2 client: Amazon Bedrock Converse / ConverseStream through boto3's bedrock-runtime client,
with message, system-prompt and tool-call translation to and from the OpenAI shapes.

boto3 is synchronous: calls run in worker threads; a stream's events are pumped from its thread to
the event loop through a queue. botocore's own retries are off (one attempt); throttling is retried
here with exponential backoff and full jitter, then surfaces as UpstreamError("throttled") → 429.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError, ConnectTimeoutError

from . import UpstreamError

THROTTLE = {"ThrottlingException", "TooManyRequestsException", "ServiceQuotaExceededException"}
UNAVAILABLE = {"ServiceUnavailableException", "ModelNotReadyException", "InternalServerException",
               "ModelTimeoutException", "ModelErrorException"}
STOP = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
        "content_filtered": "content_filter", "guardrail_intervened": "content_filter"}


def make_client(session: Any, region: str, endpoint_url: str | None, timeout_s: float, pool: int = 64) -> Any:
    cfg = Config(region_name=region, retries={"total_max_attempts": 1, "mode": "standard"},
                 connect_timeout=2, read_timeout=timeout_s, max_pool_connections=pool)
    return session.client("bedrock-runtime", endpoint_url=endpoint_url, config=cfg)


# --------------------------------------------------------------------------- OpenAI → Converse
def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for p in content:
        if isinstance(p, dict) and p.get("type") == "text":
            parts.append(p.get("text", ""))
        else:
            raise UpstreamError("bad_request", "only text content parts are supported on Bedrock", 400)
    return "".join(parts)


def to_converse(req: dict[str, Any], model_id: str) -> dict[str, Any]:
    system: list[dict] = []
    msgs: list[dict] = []

    def push(role: str, blocks: list[dict]) -> None:
        if msgs and msgs[-1]["role"] == role:  # Converse wants alternating roles
            msgs[-1]["content"].extend(blocks)
        else:
            msgs.append({"role": role, "content": blocks})

    for m in req["messages"]:
        role = m.get("role")
        if role in ("system", "developer"):
            system.append({"text": _text_of(m.get("content"))})
        elif role == "user":
            push("user", [{"text": _text_of(m.get("content"))}])
        elif role == "assistant":
            blocks: list[dict] = []
            text = _text_of(m.get("content"))
            if text:
                blocks.append({"text": text})
            for tc in m.get("tool_calls") or []:
                fn = tc["function"]
                try:
                    args = json.loads(fn.get("arguments") or "{}")
                except json.JSONDecodeError as e:
                    raise UpstreamError("bad_request", f"tool_calls arguments are not JSON: {e}", 400) from e
                blocks.append({"toolUse": {"toolUseId": tc["id"], "name": fn["name"], "input": args}})
            push("assistant", blocks or [{"text": ""}])
        elif role == "tool":
            push("user", [{"toolResult": {"toolUseId": m["tool_call_id"],
                                          "content": [{"text": _text_of(m.get("content"))}]}}])
        else:
            raise UpstreamError("bad_request", f"unsupported message role {role!r}", 400)
    out: dict[str, Any] = {"modelId": model_id, "messages": msgs}
    if system:
        out["system"] = system
    inf: dict[str, Any] = {}
    mt = req.get("max_completion_tokens") or req.get("max_tokens")
    if mt:
        inf["maxTokens"] = int(mt)
    if req.get("temperature") is not None:
        inf["temperature"] = float(req["temperature"])
    if req.get("top_p") is not None:
        inf["topP"] = float(req["top_p"])
    stop = req.get("stop")
    if stop:
        inf["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if inf:
        out["inferenceConfig"] = inf
    tools = req.get("tools")
    if tools:
        specs = []
        for t in tools:
            fn = t["function"]
            spec = {"name": fn["name"], "inputSchema": {"json": fn.get("parameters") or {"type": "object"}}}
            if fn.get("description"):
                spec["description"] = fn["description"]
            specs.append({"toolSpec": spec})
        tc: dict[str, Any] = {"tools": specs}
        choice = req.get("tool_choice")
        if choice == "required":
            tc["toolChoice"] = {"any": {}}
        elif isinstance(choice, dict) and choice.get("type") == "function":
            tc["toolChoice"] = {"tool": {"name": choice["function"]["name"]}}
        elif choice in (None, "auto"):
            tc["toolChoice"] = {"auto": {}}
        if choice != "none":
            out["toolConfig"] = tc
    return out


# --------------------------------------------------------------------------- Converse → OpenAI
def from_converse(resp: dict[str, Any], model: str) -> dict[str, Any]:
    content = resp.get("output", {}).get("message", {}).get("content", [])
    text = "".join(b["text"] for b in content if "text" in b)
    calls = [{"id": b["toolUse"]["toolUseId"], "type": "function",
              "function": {"name": b["toolUse"]["name"], "arguments": json.dumps(b["toolUse"].get("input", {}))}}
             for b in content if "toolUse" in b]
    msg: dict[str, Any] = {"role": "assistant", "content": text if (text or not calls) else None}
    if calls:
        msg["tool_calls"] = calls
    u = resp.get("usage", {})
    pt, ct = int(u.get("inputTokens", 0)), int(u.get("outputTokens", 0))
    return {"id": "chatcmpl-" + uuid.uuid4().hex, "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "message": msg,
                                         "finish_reason": STOP.get(resp.get("stopReason", ""), "stop")}],
            "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}}


class ChunkTranslator:
    """ConverseStream events → OpenAI chat.completion.chunk dicts (usage chunk last)."""

    def __init__(self, model: str) -> None:
        self.id = "chatcmpl-" + uuid.uuid4().hex
        self.model = model
        self.created = int(time.time())
        self.tool_index: dict[int, int] = {}
        self.usage: tuple[int, int] | None = None

    def _chunk(self, delta: dict, finish: str | None = None) -> dict:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def translate(self, ev: dict[str, Any]) -> list[dict]:
        if "messageStart" in ev:
            return [self._chunk({"role": "assistant", "content": ""})]
        if "contentBlockStart" in ev:
            st = ev["contentBlockStart"].get("start", {})
            if "toolUse" in st:
                i = len(self.tool_index)
                self.tool_index[ev["contentBlockStart"]["contentBlockIndex"]] = i
                return [self._chunk({"tool_calls": [{"index": i, "id": st["toolUse"]["toolUseId"], "type": "function",
                                                     "function": {"name": st["toolUse"]["name"], "arguments": ""}}]})]
            return []
        if "contentBlockDelta" in ev:
            d = ev["contentBlockDelta"]["delta"]
            if "text" in d:
                return [self._chunk({"content": d["text"]})]
            if "toolUse" in d:
                i = self.tool_index.get(ev["contentBlockDelta"]["contentBlockIndex"], 0)
                return [self._chunk({"tool_calls": [{"index": i, "function": {"arguments": d["toolUse"]["input"]}}]})]
            return []
        if "messageStop" in ev:
            return [self._chunk({}, STOP.get(ev["messageStop"].get("stopReason", ""), "stop"))]
        if "metadata" in ev:
            u = ev["metadata"].get("usage", {})
            self.usage = (int(u.get("inputTokens", 0)), int(u.get("outputTokens", 0)))
            return []
        for k in ("internalServerException", "modelStreamErrorException", "throttlingException",
                  "validationException", "serviceUnavailableException"):
            if k in ev:
                raise UpstreamError("protocol", f"bedrock stream error: {k}: {ev[k].get('message', '')}")
        return []

    def usage_chunk(self) -> dict:
        pt, ct = self.usage or (0, 0)
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [], "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}}


# --------------------------------------------------------------------------- calls
def _map_error(e: Exception) -> UpstreamError:
    if isinstance(e, ClientError):
        code = e.response.get("Error", {}).get("Code", "")
        msg = e.response.get("Error", {}).get("Message", "")
        if code in THROTTLE:
            return UpstreamError("throttled", f"bedrock throttled: {code}", 429)
        if code == "ValidationException":
            return UpstreamError("bad_request", f"bedrock rejected the request: {msg}", 400)
        if code in UNAVAILABLE:
            return UpstreamError("status", f"bedrock unavailable: {code}", 503)
        return UpstreamError("status", f"bedrock error: {code}", 502)
    if isinstance(e, (ReadTimeoutError, ConnectTimeoutError)):
        return UpstreamError("timeout", "bedrock timed out")
    if isinstance(e, EndpointConnectionError):
        return UpstreamError("connect", "bedrock unreachable")
    return UpstreamError("protocol", f"bedrock call failed: {e.__class__.__name__}")


async def _with_retry(fn: Callable[[], Any], attempts: int, base_s: float,
                      sleep: Callable[[float], Any] = asyncio.sleep) -> Any:
    for n in range(attempts):
        try:
            return await asyncio.to_thread(fn)
        except Exception as e:  # noqa: BLE001 — mapped below
            err = _map_error(e)
            if err.kind != "throttled" or n == attempts - 1:
                raise err from e
            await sleep(random.uniform(0, base_s * (2**n)))
    raise AssertionError("unreachable")


async def converse(client: Any, req: dict[str, Any], model_id: str, attempts: int, base_s: float) -> dict[str, Any]:
    params = to_converse(req, model_id)
    return await _with_retry(lambda: client.converse(**params), attempts, base_s)


async def converse_stream(client: Any, req: dict[str, Any], model_id: str, attempts: int,
                          base_s: float) -> AsyncIterator[dict[str, Any]]:
    """Opens the stream (with throttling retries) before returning; then yields raw events."""
    params = to_converse(req, model_id)
    resp = await _with_retry(lambda: client.converse_stream(**params), attempts, base_s)
    stream = resp["stream"]
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[Any] = asyncio.Queue()
    done = object()

    def pump() -> None:
        try:
            for ev in stream:
                loop.call_soon_threadsafe(q.put_nowait, ev)
        except Exception as e:  # noqa: BLE001
            loop.call_soon_threadsafe(q.put_nowait, _map_error(e))
        finally:
            loop.call_soon_threadsafe(q.put_nowait, done)

    async def gen() -> AsyncIterator[dict[str, Any]]:
        fut = loop.run_in_executor(None, pump)
        try:
            while True:
                item = await q.get()
                if item is done:
                    break
                if isinstance(item, UpstreamError):
                    raise item
                yield item
        finally:
            stream.close()
            await asyncio.shield(fut)

    return gen()
