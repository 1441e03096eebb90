from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from aiohttp import web

from tierwise_router.app import create_app
from tierwise_router.config import RouterConfig, hash_api_key
from tierwise_router.settings import Settings
from tierwise_router.triage import load_triage

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "harness"))  # procs.py: the local processes tests and benches start
from fakes import FakeBedrock, FakeGuardrails, FakeVllm  # noqa: E402
from procs import free_port, start_redis  # noqa: E402,F401 (free_port: tests import it from here)

KEY_A, KEY_B = "sk-team-a-test", "sk-team-b-test"


def make_config(vllm_urls: list[str], bedrock_url: str | None = None, **over: Any) -> RouterConfig:
    teams = over.pop("teams", None) or [
        {"name": "team-a", "api_key_sha256": [hash_api_key(KEY_A)]},
        {"name": "team-b", "api_key_sha256": [hash_api_key(KEY_B)], "allowed_models": ["auto", "tiny"]},
    ]
    models: list[dict] = [{"name": "tiny", "kind": "vllm", "served_model_name": "tiny", "endpoints": vllm_urls,
                           "adapters": ["billing", "support"], "timeout_s": 20,
                           "price": {"gpu_hour_usd": "1.80", "tokens_per_s": 1000}}]
    routing: dict[str, Any] = {"tier1_model": "tiny", "target_tier2_share": 0.3,
                               "domain_adapters": {"math": "billing", "stem": "support"}, "breaker_failures": 3}
    if bedrock_url is not None:
        models.append({"name": "claude", "kind": "bedrock", "model_id": "anthropic.claude-test-v1:0",
                       "region": "us-east-1", "endpoint_url": bedrock_url, "backoff_base_s": 0.001,
                       "max_attempts": 3, "price": {"input_usd_per_mtok": "3", "output_usd_per_mtok": "15"}})
        routing["tier2_model"] = "claude"
    routing.update(over.pop("routing", {}))
    return RouterConfig.model_validate({"teams": teams, "models": models, "routing": routing, **over})


def boto_session() -> boto3.session.Session:
    return boto3.session.Session(aws_access_key_id="AKIDTEST", aws_secret_access_key="test", region_name="us-east-1")


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def serving(fake: Any) -> AsyncIterator[tuple[Any, str]]:
    """A fake (anything with ``app()``) served on loopback for the block: yields (fake, base URL)."""
    runner, url = await serve(fake.app())
    try:
        yield fake, url
    finally:
        await runner.cleanup()


@pytest.fixture
async def fake_vllm() -> AsyncIterator[tuple[FakeVllm, str]]:
    async with serving(FakeVllm()) as s:
        yield s


@pytest.fixture
async def fake_bedrock() -> AsyncIterator[tuple[FakeBedrock, str]]:
    async with serving(FakeBedrock()) as s:
        yield s


@pytest.fixture
async def guardrails() -> AsyncIterator[tuple[FakeGuardrails, str]]:
    """The guardrails contract fake (fakes.FakeGuardrails)."""
    async with serving(FakeGuardrails()) as s:
        yield s


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(env="test", ledger_path=tmp_path / "ledger.jsonl", ledger_fsync="always", scrape_interval_s=0.05)


@pytest.fixture(scope="session")
def triage() -> Any:
    """The packaged triage (v2), loaded once per session: its encoder takes ~1 s to build."""
    t = load_triage()
    yield t
    t.close()


@pytest.fixture
def client_for(triage: Any) -> Callable[..., Any]:
    """Build the app and an in-process httpx client bound to it (lifespan runs via the app context)."""

    class _Ctx:
        def __init__(self, settings: Settings, config: RouterConfig, **kw: Any):
            kw.setdefault("triage", triage)
            self.app = create_app(settings, config=config, boto_session=boto_session(), **kw)

        async def __aenter__(self) -> httpx.AsyncClient:
            self._lifespan = self.app.router.lifespan_context(self.app)
            await self._lifespan.__aenter__()
            self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                            base_url="http://router.test", timeout=30)
            return self.client

        async def __aexit__(self, *exc: Any) -> None:
            await self.client.aclose()
            await self._lifespan.__aexit__(*exc)

    return _Ctx


# ------------------------------------------------------------------------------------ real redis
@pytest.fixture(scope="session")
def redis_url() -> Any:
    exe = shutil.which("redis-server")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed (make .make/system)")
        pytest.skip("redis-server is not installed")
    d = tempfile.mkdtemp(prefix="tw-redis-")
    try:
        proc, url = start_redis(exe, d)
    except RuntimeError as e:
        pytest.fail(str(e))
    yield url
    proc.terminate()
    proc.wait(timeout=10)
    shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------------------------ real guardrails
@pytest.fixture(scope="session")
def guardrails_url(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The real guardrails service (its own venv) on loopback, once per session (real_guardrails.py)."""
    from real_guardrails import GuardrailsServer, guardrails_python

    py = guardrails_python()
    if not py.exists():
        msg = f"guardrails python {py} not found (make .make/venv-guardrails, or set TIERWISE_GUARDRAILS_PYTHON)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    with GuardrailsServer(tmp_path_factory.mktemp("guardrails"), py) as url:
        yield url


# ------------------------------------------------------------------------------------ real vLLM
HARNESS = HERE.parent / "harness" / "vllm_server.py"


def _harness():
    spec = importlib.util.spec_from_file_location("tw_vllm_server", HARNESS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def vllm_url(tmp_path_factory):
    h = _harness()
    py = h.vllm_python()
    if not py.exists():
        msg = f"vLLM python {py} not found (make vllm-env, or set TIERWISE_VLLM_PYTHON)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    srv = h.TinyVllm(py, tmp_path_factory.mktemp("tiny-model"))
    srv.start()
    yield srv.base_url
    srv.stop()
