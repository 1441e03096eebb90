"""App factory. Run: ``uvicorn --factory tierwise_router.app:create_app --loop uvloop --http httptools``.

Plain Starlette (no FastAPI dependency-injection layer) because the per-request path is budgeted in
microseconds, and ``POST /v1/chat/completions`` is dispatched before Starlette's middleware stack
(``RouterApp.__call__`` → ``chat.chat_asgi``): that stack was ~14 % of the router's py-spy samples at
500 req/s. Every other route (models, probes, metrics, 404/405 envelopes) goes through Starlette.
See bench/router_overhead.py and the README for the numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .breaker import Breaker
from .canary import AdapterRoutes
from .budgets import BudgetStore, MemoryBudgets, RedisBudgets
from .chat import chat_asgi
from .config import RouterConfig, load_config
from .gateway import tier1_replicas
from .observability import GcWatch, configure_logging, event, make_metrics, watch_loop_lag
from .ratelimit import Pacer
from .schemas import error_response
from .settings import Settings
from .shipper import open_ledger
from .state import RouterState
from .tracing import otlp_provider, tracer
from .triage import load_triage
from .upstreams import UpstreamError
from .upstreams import bedrock as br
from .upstreams import vllm as vl


_CHAT_PATH = "/v1/chat/completions"


class RouterApp(Starlette):
    """Starlette, with the chat hot path dispatched before the middleware stack."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == _CHAT_PATH and scope["method"] == "POST":
            await chat_asgi(self.state.router, scope, receive, send)
            return
        await super().__call__(scope, receive, send)


class _ChatEndpoint:
    """The same handler as a Starlette route endpoint (reached only when the fast dispatch is bypassed,
    e.g. the app mounted under a prefix); the route also gives non-POST methods their 405 envelope."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await chat_asgi(scope["app"].state.router, scope, receive, send)


def create_app(settings: Settings | None = None, *, config: RouterConfig | None = None,
               boto_session: Any = None, pacer: Pacer | None = None, tracer_provider: Any = None,
               now: Callable[[], dt.datetime] | None = None, triage: Any = None) -> Starlette:
    settings = settings or Settings()
    metrics = make_metrics()
    log = configure_logging(settings.service_name, settings.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        cfg = config or load_config(settings.config_path)
        if cfg.hooks.rag_url is not None and settings.rag_api_key is None:
            raise ValueError("hooks.rag_url is set but TIERWISE_ROUTER_RAG_API_KEY is not: the RAG service "
                             "authenticates every /v1/retrieve call with a bearer key")
        tri = triage or load_triage(settings.triage_artifact)  # v2 loads its encoder here, once (~1 s)
        t1 = cfg.model(cfg.routing.tier1_model)
        t2 = cfg.model(cfg.routing.tier2_model) if cfg.routing.tier2_model else None
        rt = cfg.routing
        session = vl.new_session(connect_timeout_s=t1.connect_timeout_s)  # type: ignore[union-attr]
        budgets: BudgetStore = (RedisBudgets(settings.redis_url.get_secret_value())  # type: ignore[union-attr]
                                if settings.budget_backend == "redis" else MemoryBudgets())
        bedrock: dict[str, Any] = {}
        if any(m.kind == "bedrock" for m in cfg.models):
            import boto3

            sess = boto_session or boto3.session.Session()
            for m in cfg.models:
                if m.kind == "bedrock":
                    bedrock[m.name] = br.make_client(sess, m.region, str(m.endpoint_url) if m.endpoint_url else None,
                                                     m.timeout_s)
        ledger, shipper = open_ledger(settings, boto_session, log, metrics) if settings.ledger_path else (None, None)
        st = RouterState(
            settings=settings, config=cfg, triage=tri, threshold=tri.threshold_for_share(rt.target_tier2_share),
            metrics=metrics, log=log, pacer=pacer or Pacer(), budgets=budgets, session=session,
            keys={h: t for t in cfg.teams for h in t.api_key_sha256}, tier1=t1,  # type: ignore[arg-type]
            replicas=tier1_replicas(cfg, t1),  # type: ignore[arg-type]  # the Gateway alone, or every endpoint
            tier2=t2, bedrock=bedrock,  # type: ignore[arg-type]
            tier2_breaker=Breaker(rt.breaker_failures, rt.breaker_reset_s), ledger=ledger)
        if now is not None:
            st.now = now
        st.adapter_routes = AdapterRoutes(rt.adapter_routes, t1.name, t1.adapters, rt.adapter_routes_file, log)  # type: ignore[union-attr]
        if rt.adapter_routes_file is not None:
            st.adapter_routes.reload()
            st.tasks.append(asyncio.create_task(_routes_loop(st)))
        own_tp = (otlp_provider(settings.service_name, str(settings.otel_endpoint), settings.env)
                  if tracer_provider is None and settings.otel_endpoint is not None else None)
        st.tracer = tracer(tracer_provider or own_tp) if (tracer_provider or own_tp) is not None else None
        app.state.router = st
        st.tasks.append(asyncio.create_task(_scrape_loop(st)))
        st.tasks.append(asyncio.create_task(watch_loop_lag(metrics.loop_lag)))
        event(log, "startup", tier1=t1.name, replicas=len(st.replicas), tier2=t2.name if t2 else None,
              triage=tri.version, threshold=round(st.threshold, 6), budgets=settings.budget_backend)
        gcw = GcWatch(metrics.gc_pause)
        gcw.start(freeze=settings.gc_freeze)  # last: everything start-up built is frozen (see GcWatch)
        try:
            yield
        finally:
            gcw.stop()
            for t in st.tasks:
                t.cancel()
            await asyncio.gather(*st.tasks, return_exceptions=True)
            await session.close()
            if own_tp is not None:
                own_tp.shutdown()  # flushes the spans still batched
            if triage is None:
                tri.close()
            for r in st.replicas:
                if r.pool is not None:
                    r.pool.close()
            await budgets.aclose()
            if shipper is not None:  # seals and ships what is left (bounded: the pod's grace period)
                await asyncio.to_thread(shipper.stop)
            event(log, "shutdown")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        st: RouterState = request.app.state.router
        checks: dict[str, bool] = {}
        for r in st.replicas:
            try:
                async with st.session.get(r.url + "/health", headers=r.headers or None,
                                          timeout=aiohttp.ClientTimeout(total=1)) as resp:
                    checks[r.url] = resp.status == 200
            except (aiohttp.ClientError, TimeoutError):
                checks[r.url] = False
        if isinstance(st.budgets, RedisBudgets):
            try:
                await st.budgets.usage("_readyz", st.now())
                checks["redis"] = True
            except Exception:  # noqa: BLE001
                checks["redis"] = False
        tier1_ok = any(checks.get(r.url) for r in st.replicas)
        if st.ledger is not None:
            checks["ledger"] = not st.ledger.full
        ready = (tier1_ok or st.tier2 is not None) and checks.get("redis", True) and checks.get("ledger", True)
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    async def metrics_ep(request: Request) -> Response:
        st: RouterState = request.app.state.router
        for r in st.replicas:
            metrics.breaker_open.labels(r.url).set(1 if r.breaker.state == "open" else 0)
        metrics.breaker_open.labels("bedrock").set(1 if st.tier2_breaker.state == "open" else 0)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def models(request: Request) -> Response:
        st: RouterState = request.app.state.router
        from .chat import Reply, authenticate

        try:
            team = authenticate(st, request.headers.get("authorization", ""))
        except Reply as r:
            return r.response
        t1 = st.tier1
        created = int(time.time())
        ids = [("auto", "tierwise"), (t1.name, "tierwise-tier1")]
        ids += [(f"{t1.name}:{a}", "tierwise-tier1") for a in t1.adapters]
        ids += [(m.name, "tierwise-tier2") for m in st.config.models if m.kind == "bedrock"]
        if team.allowed_models is not None:
            ids = [i for i in ids if i[0] in team.allowed_models]
        return JSONResponse({"object": "list", "data": [{"id": i, "object": "model", "created": created,
                                                         "owned_by": o} for i, o in ids]})

    async def not_found(request: Request, exc: Exception) -> Response:
        return error_response(404, f"No route {request.url.path}.", "invalid_request_error", "not_found")

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        return error_response(405, "Method not allowed.", "invalid_request_error", "method_not_allowed")

    async def server_error(request: Request, exc: Exception) -> Response:
        event(log, "unhandled_error", logging.ERROR, path=request.url.path, error=exc.__class__.__name__)
        return error_response(500, "Internal error.", "api_error", "internal_error")

    app = RouterApp(
        routes=[Route(_CHAT_PATH, _ChatEndpoint(), methods=["POST"]),
                Route("/v1/models", models, methods=["GET"]),
                Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"]),
                Route("/metrics", metrics_ep, methods=["GET"])],
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: method_not_allowed, 500: server_error},
    )
    app.state.metrics = metrics
    app.state.settings = settings
    return app


async def _routes_loop(st: RouterState) -> None:
    """Re-read the adapter canary routes file when it changes (canary.py)."""
    while True:
        await asyncio.sleep(st.config.routing.adapter_routes_reload_s)
        st.adapter_routes.reload()


async def _scrape_loop(st: RouterState) -> None:
    """Poll each vLLM replica's /metrics for vllm:num_requests_waiting (feeds balancing + saturation)."""
    while True:
        for r in st.replicas:
            if not r.scrape:  # the inference Gateway: its endpoint picker scrapes the replicas
                continue
            try:
                r.waiting, r.running = await vl.scrape(st.session, r.url)
                r.scrape_ok = True
            except (UpstreamError, aiohttp.ClientError, TimeoutError, ValueError, IndexError):
                r.scrape_ok = False
                r.waiting = 0
            st.metrics.upstream_waiting.labels(r.url).set(r.waiting)
        await asyncio.sleep(st.settings.scrape_interval_s)
