"""Optional pre/post-call hooks over HTTP: guardrails (POST {guardrails_url}/v1/check) and retrieval
augmentation (POST {rag_url}/v1/retrieve). Both are skipped when not configured.

Contracts, checked against the services' own schemas (workloads/guardrails/tierwise_guardrails/
schemas.py ``CheckRequest``, engine.py ``CheckResult`` and routers/check.py; workloads/rag/tierwise_rag/
schemas.py ``RetrieveRequest``/``RetrieveResponse`` and deps.py ``get_team``):

- guardrails request ``{"direction": "input"|"output", "team": str, "messages": [{"role", "content":
  str|None, "channel"?: "user"|"tool"|"document", ...}]}`` or ``{..., "text": str}`` (exactly one of the
  two; ``content`` must be a string, so OpenAI content-part lists are flattened to their text first),
  header ``x-request-id``. Tool-role messages are sent with ``channel: "tool"``; retrieved passages are
  checked in a second call as ``channel: "document"`` messages (:func:`passage_messages`). Answer: 200,
  or **202 for ``escalate``** (with a ``ticket_id`` and a Location header), 413 ``input_too_large``;
  body ``{"decision": "allow"|"redact"|"block"|"escalate", "redacted_messages"?: [...],
  "redacted_text"?: str, "ticket_id"?: str, ...}``. ``redacted_messages`` has one entry per message
  sent; the router takes only their ``content`` back (other fields of the caller's messages are kept).
- rag request ``{"collections": [str, ...] (1..32), "query": str, "top_k": int, "mode":
  "hybrid"|"bm25"|"dense"}`` with ``Authorization: Bearer <RAG API key>`` — the RAG service derives the
  team (and its collection grants) from that key, not from the body. Answer ``{"object": "list",
  "data": [{"collection", "doc_id", "chunk_index", "text", "headings", "score", "stale", ...}],
  "versions": {...}, "timings_ms": {...}}``; 401 unknown key, 403 collection not granted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from .config import Hooks


class HookError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class GuardVerdict:
    decision: str
    messages: list[dict[str, Any]] | None = None
    text: str | None = None
    ticket_id: str | None = None


async def _post(session: aiohttp.ClientSession, url: str, body: dict, timeout_s: float,
                headers: dict[str, str], ok: tuple[int, ...] = (200,)) -> dict:
    try:
        async with session.post(url, data=orjson.dumps(body), headers=headers,
                                timeout=aiohttp.ClientTimeout(total=timeout_s)) as r:
            data = await r.read()
            if r.status not in ok:
                raise HookError(f"{url} answered {r.status}", r.status)
            d = orjson.loads(data)
            if not isinstance(d, dict):
                raise HookError(f"{url} answered a JSON {type(d).__name__}, not an object")
            return d
    except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as e:
        raise HookError(f"{url}: {e.__class__.__name__}") from e


def content_text(content: Any) -> str | None:
    """OpenAI message content → the plain string the guardrails schema accepts."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type", "text") == "text")
    return str(content)


def for_guardrails(messages: list[dict]) -> list[dict]:
    """Flatten content to strings; tool results go on the ``tool`` channel (scored for instructions
    addressed to the model, quoted or not) unless a message names its channel."""
    out = []
    for m in messages:
        c = m.get("content")
        m2 = m if c is None or isinstance(c, str) else {**m, "content": content_text(c)}
        out.append({**m2, "channel": "tool"} if m.get("role") == "tool" and "channel" not in m else m2)
    return out


def passage_messages(passages: list[dict]) -> list[dict]:
    """Retrieved RAG hits as guardrails messages on the ``document`` channel, one per hit."""
    return [{"role": "system", "content": str(p.get("text", "")), "channel": "document"} for p in passages]


def merge_redacted(messages: list[dict], redacted: list[dict]) -> list[dict]:
    """Take the redacted ``content`` of each message; keep every other field of the original."""
    if len(redacted) != len(messages):
        raise HookError(f"guardrails returned {len(redacted)} redacted messages for {len(messages)}")
    out = []
    for m, r in zip(messages, redacted):
        if m.get("content") is None or not isinstance(r, dict) or not isinstance(r.get("content"), str):
            out.append(m)  # nothing was checked (tool-call turn) or nothing usable came back
        else:
            out.append({**m, "content": r["content"]})
    return out


async def guard(session: aiohttp.ClientSession, hooks: Hooks, direction: str, team: str,
                messages: list[dict] | None = None, text: str | None = None,
                request_id: str | None = None) -> GuardVerdict | None:
    if hooks.guardrails_url is None:
        return None
    body: dict[str, Any] = {"direction": direction, "team": team}
    if messages is not None:
        body["messages"] = for_guardrails(messages)
    else:
        body["text"] = text or ""
    h = {"content-type": "application/json"}
    if request_id:
        h["x-request-id"] = request_id
    d = await _post(session, str(hooks.guardrails_url).rstrip("/") + "/v1/check", body, hooks.timeout_s, h,
                    ok=(200, 202))
    decision = d.get("decision")
    if decision not in ("allow", "redact", "block", "escalate"):
        raise HookError(f"guardrails returned an unknown decision {decision!r}")
    red = d.get("redacted_messages")
    merged = merge_redacted(messages, red) if (messages is not None and isinstance(red, list)) else None
    return GuardVerdict(decision, merged, d.get("redacted_text"), d.get("ticket_id"))


async def retrieve(session: aiohttp.ClientSession, hooks: Hooks, api_key: str | None, query: str,
                   request_id: str | None = None) -> list[dict] | None:
    if hooks.rag_url is None or not query:
        return None
    body: dict[str, Any] = {"collections": list(hooks.rag_collections), "query": query, "top_k": hooks.rag_top_k,
                            "mode": hooks.rag_mode}
    h = {"content-type": "application/json"}
    if api_key:
        h["authorization"] = f"Bearer {api_key}"
    if request_id:
        h["x-request-id"] = request_id
    d = await _post(session, str(hooks.rag_url).rstrip("/") + "/v1/retrieve", body, hooks.timeout_s, h)
    data = d.get("data")
    if not isinstance(data, list):
        raise HookError("rag answered without a 'data' list")
    return [p for p in data if isinstance(p, dict) and p.get("text")]


def augment(messages: list[dict], passages: list[dict]) -> list[dict]:
    if not passages:
        return messages

    def src(p: dict) -> str:
        if p.get("doc_id"):
            return f" (source: {p['collection']}/{p['doc_id']})" if p.get("collection") else f" (source: {p['doc_id']})"
        return ""

    ctx = "\n\n".join(f"[{i + 1}] {p.get('text', '')}{src(p)}" for i, p in enumerate(passages))
    note = {"role": "system", "content": "Use the following retrieved context when it is relevant.\n\n" + ctx}
    return [note, *messages]
