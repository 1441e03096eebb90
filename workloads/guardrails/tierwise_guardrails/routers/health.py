from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tierwise_guardrails.deps import GuardDep, MetricsDep

router = APIRouter()


@router.get("/healthz")
async def healthz():
    """Liveness: no upstream calls."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(guard: GuardDep):
    return {"status": "ready", "ner": guard.pii.ner_enabled, "audit": guard.audit is not None, "queue": guard.queue is not None}


@router.get("/metrics")
async def metrics(m: MetricsDep):
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
