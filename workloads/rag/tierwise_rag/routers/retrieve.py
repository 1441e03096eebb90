"""Query API: POST /v1/retrieve."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request

from ..deps import KBDep, TeamDep
from ..schemas import RetrieveRequest, RetrieveResponse

router = APIRouter(prefix="/v1")


@router.post("/retrieve", response_model=RetrieveResponse)
async def retrieve(body: RetrieveRequest, kb: KBDep, team: TeamDep, request: Request) -> RetrieveResponse:
    res = await asyncio.to_thread(
        kb.retrieve, team, body.collections, body.query, top_k=body.top_k, mode=body.mode, filters=body.filters, rerank=body.rerank
    )
    hist = request.app.state.metrics.stage_latency
    for stage, ms in res.timings_ms.items():
        hist.labels(stage.removesuffix("_ms")).observe(ms / 1000)
    return RetrieveResponse(data=res.hits, versions=res.versions, timings_ms=res.timings_ms)
