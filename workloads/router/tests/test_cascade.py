"""Cascade mode without a model server: the plan per team mode, the confidence verdict, the stream
buffer and the rewrite of kept answers, and the config fields."""

from __future__ import annotations

import math

import orjson
import pytest
from conftest import make_config
from pydantic import ValidationError

from tierwise_router import cascade
from tierwise_router.config import Cascade, Team
from tierwise_router.upstreams import UpstreamError
from tierwise_router.upstreams.vllm import SseEvent

HASH = "0" * 64


def team(mode: str) -> Team:
    return Team(name="t", api_key_sha256=[HASH], mode=mode)


@pytest.mark.parametrize(("mode", "score", "want"), [
    ("triage", 0.9, (2, False)), ("triage", 0.5, (1, False)), ("triage", 0.1, (1, False)),
    ("cascade", 0.9, (1, True)), ("cascade", 0.1, (1, True)),
    ("triage+cascade", 0.9, (2, False)), ("triage+cascade", 0.5, (1, True)), ("triage+cascade", 0.1, (1, False)),
])
def test_plan_per_team_mode(mode, score, want):
    p = cascade.plan(team(mode), score, threshold=0.8, unsure_threshold=0.4, tier2_available=True)
    assert (p.tier, p.cascade) == want


def test_no_cascade_without_a_tier2():
    assert cascade.plan(team("cascade"), 0.9, 0.8, 0.4, tier2_available=False) == cascade.Plan(1, False)


def test_confidence_is_the_geometric_mean_probability_of_the_judged_tokens():
    cfg = Cascade(min_confidence=0.5, tokens=2)
    v = cascade.judge([math.log(0.9), math.log(0.4), math.log(0.0001)], cfg)  # third token not judged
    assert v.tokens == 2 and v.confidence == pytest.approx(0.6) and not v.escalate
    v = cascade.judge([math.log(0.3), math.log(0.4)], cfg)
    assert v.escalate and v.confidence == pytest.approx(math.sqrt(0.12))
    assert cascade.judge([], cfg) == cascade.Verdict(None, 0, False)


def test_tier1_body_asks_for_logprobs_and_per_chunk_usage():
    b = cascade.tier1_body({"model": "x", "stream": True, "stream_options": {"include_usage": False}}, stream=True)
    assert b["logprobs"] is True and b["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}
    assert "stream_options" not in cascade.tier1_body({"model": "x"}, stream=False)


def test_judge_completion_and_strip():
    obj = {"choices": [{"index": 0, "message": {"content": "hi"},
                        "logprobs": {"content": [{"token": "h", "logprob": math.log(0.2)}, {"token": "i", "logprob": 0.0}]}}]}
    v = cascade.judge_completion(obj, Cascade(min_confidence=0.5, tokens=8))
    assert v.escalate and v.confidence == pytest.approx(math.sqrt(0.2)) and v.tokens == 2
    cascade.strip_completion(obj)
    assert "logprobs" not in obj["choices"][0]


def _chunk(text: str | None, lp: float | None, usage: tuple[int, int] | None) -> SseEvent:
    ch: dict = {"index": 0, "delta": {"content": text} if text is not None else {"role": "assistant"}}
    if lp is not None:
        ch["logprobs"] = {"content": [{"token": text, "logprob": lp}]}
    obj: dict = {"id": "c1", "choices": [ch]}
    if usage:
        obj["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
    data = orjson.dumps(obj)
    return SseEvent(b"data: " + data + b"\n\n", data)


class _Stream:
    def __init__(self, events: list[SseEvent]) -> None:
        self._events = events
        self.pulled = 0
        self.closed = False

    async def events(self):
        for ev in self._events:
            self.pulled += 1
            yield ev

    def close(self) -> None:
        self.closed = True


def _tokens(n: int, lp: float) -> list[SseEvent]:
    evs = [_chunk(None, None, (7, 0))]
    evs += [_chunk(f"t{i}", lp, (7, i + 1)) for i in range(n)]
    usage = orjson.dumps({"id": "c1", "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": n}})
    return evs + [SseEvent(b"data: " + usage + b"\n\n", usage), SseEvent(b"data: [DONE]\n\n", b"[DONE]")]


async def test_judged_stream_buffers_only_until_the_verdict_then_replays_rewritten():
    inner = _Stream(_tokens(10, math.log(0.9)))
    js = cascade.JudgedStream(inner, Cascade(min_confidence=0.5, tokens=3), keep_logprobs=False)
    v = await js.judge()
    assert not v.escalate and v.tokens == 3 and inner.pulled == 4  # role chunk + 3 tokens, no more
    assert js.usage == (7, 3)
    out = [ev async for ev in js.events()]
    assert [ev.data for ev in out][-1] == b"[DONE]" and len(out) == 13
    bodies = [orjson.loads(ev.data) for ev in out[:-1]]
    assert all("logprobs" not in c for b in bodies for c in b["choices"])
    assert [b.get("usage") for b in bodies[:-1]] == [None] * 11  # per-chunk usage was the router's
    assert bodies[-1]["usage"]["completion_tokens"] == 10  # the final usage chunk stays
    assert "".join(b["choices"][0]["delta"].get("content") or "" for b in bodies[:-1]) == "".join(f"t{i}" for i in range(10))


async def test_judged_stream_escalates_on_low_confidence_and_knows_what_tier1_used():
    js = cascade.JudgedStream(_Stream(_tokens(10, math.log(0.1))), Cascade(min_confidence=0.5, tokens=4), False)
    v = await js.judge()
    assert v.escalate and v.confidence == pytest.approx(0.1) and js.usage == (7, 4)


async def test_judged_stream_short_answer_is_judged_whole_and_keeps_logprobs_when_asked():
    js = cascade.JudgedStream(_Stream(_tokens(2, math.log(0.8))), Cascade(min_confidence=0.5, tokens=8), True)
    v = await js.judge()
    assert v.tokens == 2 and not v.escalate
    out = [ev async for ev in js.events()]
    assert out[-1].data == b"[DONE]"
    assert "logprobs" in orjson.loads(out[1].data)["choices"][0]


async def test_judged_stream_rejects_a_malformed_chunk_as_an_upstream_error():
    bad = SseEvent(b"data: {not json\n\n", b"{not json")
    js = cascade.JudgedStream(_Stream([bad]), Cascade(), False)
    with pytest.raises(UpstreamError, match="malformed"):
        await js.judge()


def test_config_mode_and_cascade_fields():
    cfg = make_config(["http://a:8000"], "http://b:9000",
                      teams=[{"name": "x", "api_key_sha256": [HASH], "mode": "triage+cascade"}],
                      routing={"cascade": {"min_confidence": 0.3, "tokens": 4, "unsure_share": 0.2}})
    assert cfg.teams[0].mode == "triage+cascade" and cfg.routing.cascade.tokens == 4
    assert make_config(["http://a:8000"]).teams[0].mode == "triage"
    with pytest.raises(ValidationError, match=r"teams\.0\.mode"):
        make_config(["http://a:8000"], teams=[{"name": "x", "api_key_sha256": [HASH], "mode": "always"}])
    with pytest.raises(ValidationError, match=r"routing\.cascade\.min_confidence"):
        make_config(["http://a:8000"], routing={"cascade": {"min_confidence": 1.5}})
