"""App factory. Run: ``uvicorn --factory tierwise_guardrails.app:create_app``."""

from __future__ import annotations

import time
import uuid
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from tierwise_guardrails.engine import Guard
from tierwise_guardrails.observability import Metrics, make_logger
from tierwise_guardrails.routers import check, health, tickets
from tierwise_guardrails.schemas import error_body
from tierwise_guardrails.settings import Settings


def create_app(settings: Settings | None = None, *, guard: Guard | None = None) -> FastAPI:
    """Build the service. ``guard`` lets tests and embedders pass a pre-built Guard."""
    settings = settings or Settings()
    metrics = Metrics()
    log = make_logger(settings.service_name)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        g = guard or Guard.from_settings(settings)
        try:
            yield {"guard": g}
        finally:
            if guard is None and g.queue is not None:
                g.queue.close()

    app = FastAPI(title="tierwise guardrails", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = metrics

    @app.middleware("http")
    async def size_limit_and_log(request: Request, call_next):
        start = time.perf_counter()
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        route = request.url.path if request.url.path in ("/v1/check", "/healthz", "/readyz", "/metrics") else (
            "/v1/tickets" if request.url.path.startswith("/v1/tickets") else "other")
        declared = request.headers.get("content-length")
        # The body also carries JSON framing: allow 2x the text limit before parsing at all.
        if declared is not None and declared.isdigit() and int(declared) > 2 * settings.max_input_bytes + 4096:
            resp: Any = JSONResponse(
                error_body(f"request body is {declared} bytes; the limit is {2 * settings.max_input_bytes + 4096}", "invalid_request_error", "input_too_large"),
                status_code=413,
            )
        else:
            resp = await call_next(request)
        latency = (time.perf_counter() - start) * 1000
        metrics.requests.labels(route, str(resp.status_code)).inc()
        extra = {"request_id": rid, "route": route, "status": resp.status_code, "latency_ms": round(latency, 3)}
        extra.update(getattr(request.state, "log_extra", {}))
        log.info("request", extra=extra)
        resp.headers["x-request-id"] = rid
        return resp

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        errs = exc.errors()
        first = errs[0] if errs else {}
        loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse(error_body(f"{loc or 'body'}: {first.get('msg', 'invalid request')}", "invalid_request_error", "invalid_request", loc or None), status_code=400)

    app.include_router(check.router)
    app.include_router(tickets.router)
    app.include_router(health.router)
    return app
