"""Output guardrails on streamed responses.

A streamed answer is checked per sentence before it reaches the client: content deltas are buffered
until a sentence boundary (``.``/``!``/``?``/``;``/``:``/newline followed by white space) or, for a run-on
sentence, ``hooks.stream_window_chars`` (cut at the last space before it), then the unit goes to the
guardrails service (``POST /v1/check`` ``{"direction": "output", "text": unit}``):

- ``allow`` → the unit is sent as one chunk;
- ``redact`` → the unit is sent with the service's ``redacted_text`` instead;
- ``block`` / ``escalate`` → the stream is cut: ``event: error`` with
  ``data: {"error": {"code": "guardrail_output_block"|"guardrail_output_escalate", ...}}`` and no
  ``[DONE]`` (the ``openai`` client raises ``APIError``), the upstream call is closed (vLLM aborts it);
- guardrails unreachable → ``fail_open`` decides: pass the unit unchecked, or cut with
  ``code: "hook_unavailable"``.

Re-framing: while the check is on, content arrives per sentence, not per token (one chunk per checked
unit; the unit's chunk keeps the id/model/created of the last delta in it, ``logprobs`` are dropped).
Every other frame (role, tool calls, finish reason, usage, ``[DONE]``, upstream errors) first flushes
what is buffered, then passes through unchanged. A PII span inside one sentence is always checked
whole; the text after the last boundary stays buffered, so a span is only split by the window cut of a
sentence longer than ``stream_window_chars`` with no space in the last part.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

#: a sentence ends at terminal punctuation (plus closing quotes/brackets) followed by white space
_BOUNDARY = re.compile(r"""[.!?;:\n]["')\]]*\s""")


@dataclass(frozen=True)
class Decision:
    """What the check said about one unit: ``allow``/``redact`` carry the text to send; ``cut`` carries the
    error code to end the stream with."""

    action: str  # allow | redact | cut
    text: str = ""
    code: str = ""


Check = Callable[[str], Awaitable[Decision]]


def split_point(buf: str, window_chars: int) -> int:
    """How much of ``buf`` is ready to check: up to its last sentence boundary, else (past the window)
    up to the last space before the window, else the window. 0 = keep buffering."""
    end = 0
    for m in _BOUNDARY.finditer(buf):
        end = m.end()
    if end:
        return end
    if len(buf) < window_chars:
        return 0
    sp = buf.rfind(" ", 0, window_chars)
    return sp + 1 if sp > 0 else window_chars


def error_frame(code: str, message: str) -> bytes:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": code, "param": None}}
    return b"event: error\ndata: " + orjson.dumps(body) + b"\n\n"


def _content(frame: bytes) -> tuple[dict[str, Any], str] | None:
    """(chunk, content) for a data frame whose single choice carries non-empty delta content."""
    if b'"content"' not in frame:
        return None
    data = b"\n".join(line[5:].lstrip() for line in frame.split(b"\n") if line.startswith(b"data:"))
    if not data.startswith(b"{"):
        return None
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    ch = obj.get("choices") if isinstance(obj, dict) else None
    if not isinstance(ch, list) or not ch:
        return None
    texts = [((c.get("delta") or {}).get("content")) for c in ch if isinstance(c, dict)]
    if len(ch) != 1:  # n > 1: check every choice's content of this frame as it is (no buffering across choices)
        joined = "\n".join(t for t in texts if isinstance(t, str))
        return (obj, joined) if joined else None
    t = texts[0] if texts else None
    return (obj, t) if isinstance(t, str) and t else None


def _frame(obj: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _with_content(obj: dict[str, Any], text: str) -> dict[str, Any]:
    c = dict(obj["choices"][0])
    c["delta"] = {**(c.get("delta") or {}), "content": text}
    c.pop("logprobs", None)
    return {**obj, "choices": [c]}


class _Cut(Exception):
    def __init__(self, frame: bytes) -> None:
        self.frame = frame


async def guarded(frames: AsyncIterator[bytes], check: Check, window_chars: int) -> AsyncIterator[bytes]:
    """Relay SSE ``frames`` (one whole event each), checking their content as described above."""
    buf, template = "", None

    async def unit(text: str, tmpl: dict[str, Any]) -> dict[str, Any]:
        d = await check(text)
        if d.action == "cut":
            raise _Cut(error_frame(d.code, f"The response was stopped by the guardrails ({d.code})."))
        return _with_content(tmpl, d.text)

    try:
        async for fr in frames:
            got = _content(fr)
            if got is not None:
                obj, text = got
                if len(obj["choices"]) != 1:
                    d = await check(text)
                    if d.action == "cut":
                        raise _Cut(error_frame(d.code, f"The response was stopped by the guardrails ({d.code})."))
                    if d.action == "redact":  # cannot map the redaction back onto several choices: drop them
                        raise _Cut(error_frame("guardrail_output_redact",
                                               "The response needed redaction, which n > 1 streams cannot carry."))
                    yield fr
                    continue
                buf, template = buf + text, obj
                c = obj["choices"][0]
                plain = c.get("finish_reason") is None and set(c.get("delta") or {}) <= {"content", "role"}
                if plain:
                    n = split_point(buf, window_chars)
                    if n:
                        ready, buf = buf[:n], buf[n:]
                        yield _frame(await unit(ready, template))
                    continue
                ready, buf = buf, ""  # a frame that also ends the choice or carries tool calls: flush all
                yield _frame(await unit(ready, obj))
                continue
            if buf:
                ready, buf = buf, ""
                yield _frame(await unit(ready, template))  # type: ignore[arg-type]
            yield fr
        if buf:  # the upstream ended without a closing frame: still never send unchecked text
            yield _frame(await unit(buf, template))  # type: ignore[arg-type]
    except _Cut as c:
        yield c.frame
    finally:
        aclose = getattr(frames, "aclose", None)
        if aclose is not None:
            await aclose()


def output_check(st: Any, team: str, request_id: str) -> Check:
    """The guardrails output check for one streamed answer (``st``: the RouterState)."""
    from .hooks import HookError, guard
    from .observability import event

    hooks = st.config.hooks

    def cut(code: str) -> Decision:
        st.metrics.child(st.metrics.rejections, team, "guardrail_output").inc()
        event(st.log, "stream_output_cut", logging.WARNING, request_id=request_id, team=team, code=code)
        return Decision("cut", code=code)

    async def check(text: str) -> Decision:
        try:
            v = await guard(st.session, hooks, "output", team, text=text, request_id=request_id)
        except HookError as e:
            if hooks.fail_open:
                event(st.log, "hook_skipped", logging.WARNING, request_id=request_id, error=str(e))
                return Decision("allow", text)
            return cut("hook_unavailable")
        if v is None or v.decision == "allow":
            return Decision("allow", text)
        if v.decision == "redact":
            if v.text is None:  # the service broke its contract: never send what it wanted redacted
                return cut("guardrail_output_redact")
            event(st.log, "stream_output_redacted", request_id=request_id, team=team)
            return Decision("redact", v.text)
        return cut(f"guardrail_output_{v.decision}")

    return check
