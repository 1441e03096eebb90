"""Health API: liveness (/healthz), readiness (/readyz: Qdrant reachable) and Prometheus /metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers; no upstream calls."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Readiness: the vector store answers."""
    try:
        await asyncio.to_thread(request.state.kb.ping)
    except Exception as exc:  # noqa: BLE001 - any store failure means not ready
        return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    m = request.app.state.metrics
    kb = request.state.kb
    for name, info in list(kb._entries.items()):  # refresh the staleness gauge at scrape time
        if info.kind == "fluid":
            view = kb._fluid.get(name) or {}
            oldest = min((p["ingested_at"] for p in view.values()), default=None)
            m.fluid_oldest_age.labels(name).set(kb.clock() - oldest if oldest is not None else 0.0)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
