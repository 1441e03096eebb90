"""Fixtures for the agent tests; helpers live in `tierwise_agents.testing` (importlib mode)."""

from __future__ import annotations

import pytest

from tierwise_agents.testing import fake_tools, fake_vllm, serve_stub


@pytest.fixture
def stubs():
    vllm, tools = fake_vllm(), fake_tools()
    servers = [serve_stub(vllm), serve_stub(tools)]
    yield vllm, tools
    for s in servers:
        s.shutdown()
