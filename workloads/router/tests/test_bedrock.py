"""Tier 2: real boto3 bedrock-runtime against botocore's Stubber and a local Converse wire server."""

from __future__ import annotations

import httpx
import openai
import pytest
from botocore.stub import Stubber
from conftest import KEY_A, boto_session, make_config

from tierwise_router.upstreams import UpstreamError
from tierwise_router.upstreams import bedrock as br

H = {"authorization": f"Bearer {KEY_A}"}


def test_translation_of_system_tools_and_tool_results():
    req = {"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "user", "content": "And tomorrow?"}],
        "max_tokens": 64, "temperature": 0.2, "stop": "END",
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "weather",
                                                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": "required"}
    c = br.to_converse(req, "m")
    assert c["system"] == [{"text": "Be brief."}]
    assert [m["role"] for m in c["messages"]] == ["user", "assistant", "user"]
    assert c["messages"][1]["content"] == [{"toolUse": {"toolUseId": "call_1", "name": "get_weather",
                                                        "input": {"city": "Paris"}}}]
    # tool result and the next user turn merge into one user message (Converse alternates roles)
    assert c["messages"][2]["content"][0]["toolResult"]["toolUseId"] == "call_1"
    assert c["messages"][2]["content"][1] == {"text": "And tomorrow?"}
    assert c["inferenceConfig"] == {"maxTokens": 64, "temperature": 0.2, "stopSequences": ["END"]}
    assert c["toolConfig"]["toolChoice"] == {"any": {}}
    assert c["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["properties"]["city"]


def test_fails_on_bad_tool_arguments():
    req = {"messages": [{"role": "assistant", "tool_calls": [
        {"id": "x", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]}
    with pytest.raises(UpstreamError, match="not JSON"):
        br.to_converse(req, "m")


async def test_stubbed_converse_tool_call_and_throttling_exhaustion():
    client = br.make_client(boto_session(), "us-east-1", None, 5)
    with Stubber(client) as stub:
        stub.add_response("converse", {
            "output": {"message": {"role": "assistant", "content": [
                {"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {"q": "x"}}}]}},
            "stopReason": "tool_use", "usage": {"inputTokens": 5, "outputTokens": 2, "totalTokens": 7},
            "metrics": {"latencyMs": 1}}, {"modelId": "m", "messages": [{"role": "user", "content": [{"text": "hi"}]}]})
        resp = await br.converse(client, {"messages": [{"role": "user", "content": "hi"}]}, "m", 1, 0)
        out = br.from_converse(resp, "claude")
        assert out["choices"][0]["finish_reason"] == "tool_calls"
        assert out["choices"][0]["message"]["tool_calls"][0]["function"] == {"name": "lookup", "arguments": '{"q": "x"}'}
        assert out["usage"] == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
        for _ in range(2):
            stub.add_client_error("converse", "ThrottlingException", "slow down", 429)
        with pytest.raises(UpstreamError) as ei:
            await br.converse(client, {"messages": [{"role": "user", "content": "hi"}]}, "m", 2, 0)
        assert ei.value.kind == "throttled"
        stub.assert_no_pending_responses()


async def test_wire_server_throttling_retried_then_success(settings, fake_vllm, fake_bedrock, client_for):
    _, url = fake_vllm
    fb, burl = fake_bedrock
    fb.throttle_first = 2  # max_attempts = 3
    async with client_for(settings, make_config([url], burl)) as c:
        r = await c.post("/v1/chat/completions", headers=H, json={"model": "claude", "messages": [
            {"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}], "max_tokens": 9})
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == "Bonjour from Bedrock"
        assert len(fb.requests) == 3
        assert fb.requests[-1]["system"] == [{"text": "sys"}]
        assert fb.requests[-1]["model_id"] == "anthropic.claude-test-v1:0"
        assert r.headers["x-tierwise-route"] == "tier2:claude"
        fb.throttle_first = 3
        r = await c.post("/v1/chat/completions", headers=H, json={"model": "claude", "messages": [
            {"role": "user", "content": "hi"}]})
        assert r.status_code == 429 and r.json()["error"]["code"] == "upstream_throttled"
        assert "retry-after" in r.headers


async def test_wire_server_tool_call_through_openai_client(settings, fake_vllm, fake_bedrock, client_for):
    _, url = fake_vllm
    fb, burl = fake_bedrock
    fb.tool_call = True
    ctx = client_for(settings, make_config([url], burl))
    async with ctx:
        oc = openai.AsyncOpenAI(api_key=KEY_A, base_url="http://router.test/v1",
                                http_client=httpx.AsyncClient(transport=httpx.ASGITransport(app=ctx.app)))
        r = await oc.chat.completions.create(model="claude", messages=[{"role": "user", "content": "weather?"}],
                                             tools=[{"type": "function", "function": {"name": "get_weather",
                                                                                      "parameters": {"type": "object"}}}])
        assert r.choices[0].finish_reason == "tool_calls"
        assert r.choices[0].message.tool_calls[0].function.name == "get_weather"
        assert fb.requests[-1]["toolConfig"]["toolChoice"] == {"auto": {}}


async def test_converse_stream_error_after_bytes_is_explicit(settings, fake_vllm, fake_bedrock, client_for):
    _, url = fake_vllm
    fb, burl = fake_bedrock
    fb.stream_error_after = 2
    ctx = client_for(settings, make_config([url], burl))
    async with ctx as c:
        async with c.stream("POST", "/v1/chat/completions", headers=H,
                            json={"model": "claude", "messages": [{"role": "user", "content": "hi"}], "stream": True}) as r:
            body = b"".join([b async for b in r.aiter_bytes()])
        assert b'"content":"Bonjour"' in body
        assert b"event: error" in body and b"stream_interrupted" in body and b"[DONE]" not in body
