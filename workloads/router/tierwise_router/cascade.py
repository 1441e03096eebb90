"""Cascade mode: Tier 1 answers first, and the router escalates to Tier 2 before the first byte
reaches the client when Tier 1 is not confident.

Owns: when a call cascades (``plan``: the team's ``mode`` and, for ``triage+cascade``, the triage
score band), the Tier-1 request changes (token logprobs; for streams also per-chunk usage, so an
abandoned stream's Tier-1 tokens are known exactly), the confidence of an answer (the geometric-mean
probability of its first ``routing.cascade.tokens`` tokens, ``exp(mean logprob)``), and the
client-facing rewrite of kept answers (logprobs and per-chunk usage removed unless the caller asked
for them). Non-streaming calls are judged on the whole Tier-1 answer's first N tokens; streams are
buffered until N tokens (or the end of the answer) have arrived, so the client never sees a byte of
an answer that is then escalated. chat.py does the calls, budgets and ledger: an escalated call's
Tier-1 tokens are settled and written to the ledger (status ``escalated``) before Tier 2 is reserved.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson

from .config import Cascade, Team
from .upstreams import UpstreamError
from .upstreams.vllm import SseEvent, VllmStream


@dataclass(frozen=True)
class Plan:
    """How a call to ``auto`` is routed once triage has scored it."""

    tier: int
    cascade: bool


def plan(team: Team, score: float, threshold: float, unsure_threshold: float, tier2_available: bool) -> Plan:
    """``threshold``: the triage cut for the target Tier-2 share; ``unsure_threshold`` (≤ threshold): the
    cut for target + ``cascade.unsure_share``. Scores between the two are the ones triage is unsure of."""
    if not tier2_available:
        return Plan(1, False)  # nowhere to escalate to
    if team.mode == "cascade":
        return Plan(1, True)
    if score >= threshold:
        return Plan(2, False)
    if team.mode == "triage+cascade" and score >= unsure_threshold:
        return Plan(1, True)
    return Plan(1, False)


def tier1_body(body: dict, stream: bool) -> dict:
    """The Tier-1 request of a cascaded call: logprobs on; streams also carry usage on every chunk."""
    out = dict(body)
    out["logprobs"] = True
    if stream:
        so = dict(out.get("stream_options") or {})
        so["include_usage"] = True
        so["continuous_usage_stats"] = True
        out["stream_options"] = so
    return out


def confidence(logprobs: list[float]) -> float | None:
    """Geometric-mean token probability, or None when there is nothing to judge."""
    if not logprobs:
        return None
    return math.exp(sum(logprobs) / len(logprobs))


def token_logprobs(choice: dict) -> list[float]:
    lp = choice.get("logprobs") or {}
    return [float(t["logprob"]) for t in (lp.get("content") or []) if t.get("logprob") is not None]


@dataclass(frozen=True)
class Verdict:
    confidence: float | None
    tokens: int
    escalate: bool


def judge(logprobs: list[float], cfg: Cascade) -> Verdict:
    head = logprobs[: cfg.tokens]
    c = confidence(head)
    return Verdict(c, len(head), c is not None and c < cfg.min_confidence)


def judge_completion(obj: dict, cfg: Cascade) -> Verdict:
    choices = obj.get("choices") or []
    return judge(token_logprobs(choices[0]) if choices else [], cfg)


def strip_completion(obj: dict) -> None:
    """Remove the logprobs the router asked for (the caller did not)."""
    for c in obj.get("choices") or []:
        c.pop("logprobs", None)


class JudgedStream:
    """A Tier-1 stream opened with logprobs and per-chunk usage, read until the verdict.

    ``await judge()`` buffers events until ``cfg.tokens`` token logprobs (or the end of the stream)
    have arrived. Then ``events()`` replays the buffer and the rest of the stream as the caller asked
    for it (same interface as ``VllmStream``, so chat.py relays it unchanged). ``usage`` is the latest
    per-chunk usage: what Tier 1 consumed so far, for the ledger when the call escalates."""

    def __init__(self, inner: VllmStream, cfg: Cascade, keep_logprobs: bool) -> None:
        self._inner = inner
        self._it = inner.events()
        self._cfg = cfg
        self._keep_logprobs = keep_logprobs
        self._buffer: list[SseEvent] = []
        self._ended = False
        self.usage: tuple[int, int] | None = None
        self.verdict: Verdict | None = None

    async def judge(self) -> Verdict:
        lps: list[float] = []
        async for ev in self._it:
            self._buffer.append(ev)
            if ev.data == b"[DONE]":
                self._ended = True
                break
            obj = self._parse(ev)
            if obj is None:
                continue
            for c in obj.get("choices") or []:
                if c.get("index", 0) == 0:
                    lps.extend(token_logprobs(c))
            if len(lps) >= self._cfg.tokens:
                break
        else:
            self._ended = True
        self.verdict = judge(lps, self._cfg)
        return self.verdict

    def _parse(self, ev: SseEvent) -> dict | None:
        if not ev.data.startswith(b"{"):
            return None
        try:
            obj = orjson.loads(ev.data)
        except orjson.JSONDecodeError as e:
            raise UpstreamError("protocol", "tier-1 stream sent a malformed chunk") from e
        u = obj.get("usage")
        if u:
            self.usage = (int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0))
        return obj

    def _rewrite(self, ev: SseEvent) -> SseEvent:
        if not ev.data.startswith(b"{") or ev.data.startswith(b'{"error"'):
            return ev
        obj = orjson.loads(ev.data)
        choices = obj.get("choices")
        if choices:
            obj.pop("usage", None)  # per-chunk usage was for the router; the final usage chunk stays
            if not self._keep_logprobs:
                for c in choices:
                    c.pop("logprobs", None)
        data = orjson.dumps(obj)
        return SseEvent(b"data: " + data + b"\n\n", data)

    async def events(self) -> AsyncIterator[SseEvent]:
        for ev in self._buffer:
            yield self._rewrite(ev)
        self._buffer = []
        if self._ended:
            return
        async for ev in self._it:
            yield self._rewrite(ev)

    def close(self) -> None:
        self._inner.close()
