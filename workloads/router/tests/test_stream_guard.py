"""Output guardrails on streamed responses (stream_guard.py): per-sentence units, redaction, cutting the
stream with the documented error event, Tier 1 and Tier 2. The guardrails service here is the contract
fake (fakes.FakeGuardrails: redacts 4111 1111 1111 1111, blocks on BLOCKME); test_gateway_e2e.py runs the
real service."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import openai
import pytest
from conftest import KEY_A, make_config, serving
from gateway_stub import StubGateway

from tierwise_router.stream_guard import Decision, guarded, split_point

H = {"authorization": f"Bearer {KEY_A}"}
MSG = [{"role": "user", "content": "What is my card?"}]
CARD = "4111 1111 1111 1111"


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[StubGateway, str]]:
    async with serving(StubGateway(model=None)) as s:
        yield s


def events(text: str) -> list[tuple[str | None, str]]:
    """(event type, data) per SSE event."""
    out = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        ev = None
        data = []
        for ln in block.split("\n"):
            if ln.startswith("event:"):
                ev = ln[6:].strip()
            elif ln.startswith("data:"):
                data.append(ln[5:].strip())
        out.append((ev, "\n".join(data)))
    return out


def content(evs: list[tuple[str | None, str]]) -> str:
    s = ""
    for ev, d in evs:
        if ev is None and d.startswith("{"):
            for c in json.loads(d).get("choices") or []:
                s += (c.get("delta") or {}).get("content") or ""
    return s


def test_split_point_waits_for_a_sentence_end_or_the_window():
    assert split_point("My card is 4111", 400) == 0
    assert split_point("Done. My card is 4111", 400) == len("Done. ")
    assert split_point("e-mail john.doe@example.com now", 400) == 0  # a dot inside a token is no boundary
    assert split_point("a" * 10 + " " + "b" * 30, 32) == 11  # run-on: the last space before the window
    assert split_point("x" * 50, 32) == 32


async def test_a_pii_span_across_many_deltas_is_checked_whole_and_frames_are_kept():
    seen: list[str] = []

    async def check(t: str) -> Decision:
        seen.append(t)
        return Decision("redact", t.replace(CARD, "<CREDIT_CARD>"))

    def chunk(delta: dict, finish=None) -> bytes:
        return b"data: " + json.dumps({"id": "c", "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                                               "finish_reason": finish}]}).encode() + b"\n\n"

    text = f"Sure. Your card is {CARD}. Bye"
    frames = [chunk({"role": "assistant", "content": ""})] + [chunk({"content": text[i:i + 2]})
                                                               for i in range(0, len(text), 2)]
    frames += [chunk({}, "stop"), b"data: [DONE]\n\n"]

    async def gen():
        for f in frames:
            yield f

    out = [f async for f in guarded(gen(), check, 400)]
    assert seen == ["Sure. ", f"Your card is {CARD}. ", "Bye"]
    assert content(events(b"".join(out).decode())) == "Sure. Your card is <CREDIT_CARD>. Bye"
    assert out[0] == frames[0] and out[-2:] == frames[-2:]  # role, finish and [DONE] frames pass unchanged


@pytest.mark.parametrize("stream_text, want", [
    (f"Of course. Your card number is {CARD}. Anything else?", "redact"),
    ("Here it is. BLOCKME secret stuff. More text.", "block"),
])
async def test_tier1_stream_is_redacted_or_cut(settings, upstream, guardrails, client_for, stream_text, want):
    g, url = upstream
    g.text = stream_text
    fg, gurl = guardrails
    async with client_for(settings, make_config([url], hooks={"guardrails_url": gurl})) as c:
        r = await c.post("/v1/chat/completions", headers=H, json={"model": "tiny", "messages": MSG, "stream": True})
        assert r.status_code == 200
        evs = events(r.text)
        m = (await c.get("/metrics")).text
    outputs = [x["text"] for x in fg.calls if x["direction"] == "output"]
    assert "".join(outputs).startswith(stream_text.split(".")[0])
    if want == "redact":
        assert content(evs) == stream_text.replace(CARD, "<CREDIT_CARD>")
        assert CARD not in r.text and evs[-1] == (None, "[DONE]")
        assert f"Your card number is {CARD}. " in outputs  # the span was checked whole
    else:
        assert "BLOCKME" not in r.text and content(evs) == "Here it is. "
        assert evs[-1][0] == "error" and json.loads(evs[-1][1])["error"]["code"] == "guardrail_output_block"
        assert all(d != "[DONE]" for _, d in evs)
        assert 'tierwise_router_rejections_total{reason="guardrail_output",team="team-a"} 1.0' in m
        assert "More text" not in "".join(outputs), "nothing after the cut is checked or sent"


async def test_openai_client_sees_the_cut_as_an_api_error(settings, upstream, guardrails, client_for):
    g, url = upstream
    g.text = "Fine. BLOCKME now. Later."
    _, gurl = guardrails
    async with client_for(settings, make_config([url], hooks={"guardrails_url": gurl})) as c:
        oc = openai.AsyncOpenAI(api_key=KEY_A, base_url="http://router.test/v1", http_client=c, max_retries=0)
        got = ""
        with pytest.raises(openai.APIError, match="guardrail_output_block"):
            async for ch in await oc.chat.completions.create(model="tiny", messages=MSG, stream=True):
                got += (ch.choices[0].delta.content or "") if ch.choices else ""
        assert got == "Fine. "


async def test_tier2_stream_is_checked_too(settings, fake_vllm, fake_bedrock, guardrails, client_for):
    fb, burl = fake_bedrock
    fb.text = f"Bonjour. Card {CARD} here."
    _, gurl = guardrails
    async with client_for(settings, make_config([fake_vllm[1]], burl, hooks={"guardrails_url": gurl})) as c:
        r = await c.post("/v1/chat/completions", headers=H, json={"model": "claude", "messages": MSG, "stream": True})
    assert r.status_code == 200 and CARD not in r.text
    assert content(events(r.text)) == "Bonjour. Card <CREDIT_CARD> here."


async def test_guardrails_down_mid_stream_cuts_unless_fail_open(settings, upstream, client_for):
    g, url = upstream
    g.text = "One. Two."
    dead = "http://127.0.0.1:9"
    async with client_for(settings, make_config([url], hooks={"guardrails_url": dead})) as c:
        r = await c.post("/v1/chat/completions", headers=H, json={"model": "tiny", "messages": MSG, "stream": True})
    # the input check fails first (503, nothing streamed): the stream path is covered with fail_open below
    assert r.status_code == 503
    async with client_for(settings, make_config([url], hooks={"guardrails_url": dead, "fail_open": True})) as c:
        r = await c.post("/v1/chat/completions", headers=H, json={"model": "tiny", "messages": MSG, "stream": True})
    assert r.status_code == 200 and content(events(r.text)) == "One. Two."
