"""Optional pre/post-call hooks over HTTP: guardrails (POST {guardrails_url}/v1/check) and retrieval
augmentation (POST {rag_url}/v1/retrieve). Both are skipped when not configured.

Contracts the router relies on (kept minimal and tolerant):
- guardrails request ``{"direction": "input"|"output", "messages"|"text": ..., "team": ...}``;
  response ``{"decision": "allow"|"redact"|"block"|"escalate", "redacted_messages"?: [...],
  "redacted_text"?: str}``.
- rag request ``{"query": str, "collection"?: str, "top_k": int, "team": str}``; response
  ``{"results": [{"text": str, "source"?: str}]}`` (``chunks`` also accepted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from .config import Hooks


class HookError(Exception):
    pass


@dataclass(frozen=True)
class GuardVerdict:
    decision: str
    messages: list[dict[str, Any]] | None = None
    text: str | None = None


async def _post(session: aiohttp.ClientSession, url: str, body: dict, timeout_s: float) -> dict:
    try:
        async with session.post(url, data=orjson.dumps(body), headers={"content-type": "application/json"},
                                timeout=aiohttp.ClientTimeout(total=timeout_s)) as r:
            data = await r.read()
            if r.status != 200:
                raise HookError(f"{url} answered {r.status}")
            return orjson.loads(data)
    except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as e:
        raise HookError(f"{url}: {e.__class__.__name__}") from e


async def guard(session: aiohttp.ClientSession, hooks: Hooks, direction: str, team: str,
                messages: list[dict] | None = None, text: str | None = None) -> GuardVerdict | None:
    if hooks.guardrails_url is None:
        return None
    body: dict[str, Any] = {"direction": direction, "team": team}
    if messages is not None:
        body["messages"] = messages
    else:
        body["text"] = text
    d = await _post(session, str(hooks.guardrails_url).rstrip("/") + "/v1/check", body, hooks.timeout_s)
    decision = d.get("decision")
    if decision not in ("allow", "redact", "block", "escalate"):
        raise HookError(f"guardrails returned an unknown decision {decision!r}")
    return GuardVerdict(decision, d.get("redacted_messages"), d.get("redacted_text"))


async def retrieve(session: aiohttp.ClientSession, hooks: Hooks, team: str, query: str) -> list[dict] | None:
    if hooks.rag_url is None or not query:
        return None
    body: dict[str, Any] = {"query": query, "top_k": hooks.rag_top_k, "team": team}
    if hooks.rag_collection:
        body["collection"] = hooks.rag_collection
    d = await _post(session, str(hooks.rag_url).rstrip("/") + "/v1/retrieve", body, hooks.timeout_s)
    return list(d.get("results") or d.get("chunks") or [])


def augment(messages: list[dict], passages: list[dict]) -> list[dict]:
    if not passages:
        return messages
    ctx = "\n\n".join(f"[{i + 1}] {p.get('text', '')}" + (f" (source: {p['source']})" if p.get("source") else "")
                      for i, p in enumerate(passages))
    note = {"role": "system", "content": "Use the following retrieved context when it is relevant.\n\n" + ctx}
    return [note, *messages]
