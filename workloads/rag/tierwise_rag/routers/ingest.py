"""Write API: one-request ingest, multi-request anchored staging (open → add documents … → commit,
optionally promote; abort), and fluid deletes."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request, Response

from ..deps import KBDep, SettingsDep, TeamDep
from ..documents import DocumentError, RawDocument, decode_base64
from ..models import DocResult, IngestReport, InvalidRequest, StagingInfo
from ..schemas import (
    CommitStagingRequest, DeleteRequest, DocResultOut, DocumentIn, IngestRequest, IngestResponse, OpenStagingRequest,
    StageDocumentsRequest, StageDocumentsResponse,
)
from ..settings import Settings

router = APIRouter(prefix="/v1")
log = logging.getLogger("tierwise.rag.api")


def _out(r: DocResult) -> DocResultOut:
    return DocResultOut(id=r.id, status=r.status, chunks=r.chunks, error=r.error)


def _decode(documents: list[DocumentIn], settings: Settings) -> tuple[list[RawDocument], dict[int, DocResult]]:
    """Wire documents → raw documents; a document whose body cannot be decoded gets its error here."""
    if len(documents) > settings.max_batch_documents:
        raise InvalidRequest(f"at most {settings.max_batch_documents} documents per request", "documents")
    raws: list[RawDocument] = []
    pre_errors: dict[int, DocResult] = {}
    for i, d in enumerate(documents):
        try:
            content: str | bytes = d.text if d.text is not None else decode_base64(d.content_base64 or "")
        except DocumentError as exc:
            pre_errors[i] = DocResult(d.id, "error", error=exc.as_dict())
            continue
        raws.append(RawDocument(d.id, content, d.content_type, d.encoding, dict(d.metadata), d.source_version))
    return raws, pre_errors


def _merge(n: int, pre_errors: dict[int, DocResult], done: list[DocResult]) -> list[DocResult]:
    it = iter(done)
    return [pre_errors[i] if i in pre_errors else next(it) for i in range(n)]


def _count(results: list[DocResult], kind: str, request: Request) -> dict[str, int]:
    counts: dict[str, int] = {}
    m = request.app.state.metrics
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
        m.documents.labels(kind, r.status).inc()
    return counts


def _response(report: IngestReport, results: list[DocResult], request: Request) -> IngestResponse:
    return IngestResponse(collection=report.collection, kind=report.kind, version=report.version, created_version=report.created_version,
                          promoted=report.promoted, counts=_count(results, report.kind, request), results=[_out(r) for r in results])


@router.post("/ingest", response_model=IngestResponse)
async def ingest(body: IngestRequest, kb: KBDep, team: TeamDep, settings: SettingsDep, request: Request) -> IngestResponse:
    raws, pre_errors = _decode(body.documents, settings)
    if raws:
        report = await asyncio.to_thread(kb.ingest, team, body.collection, raws, promote=body.promote)
    else:
        report = IngestReport(body.collection, kb.get_collection(team, body.collection).kind, [])
    results = _merge(len(body.documents), pre_errors, report.results)
    resp = _response(report, results, request)
    log.info("ingest", extra={"collection": body.collection, "team": team, "counts": resp.counts})
    return resp


@router.post("/collections/{name}/staging", status_code=201, response_model=StagingInfo)
async def open_staging(name: str, body: OpenStagingRequest, kb: KBDep, team: TeamDep) -> StagingInfo:
    return await asyncio.to_thread(kb.open_staging, team, name, ttl_seconds=body.ttl_seconds)


@router.get("/collections/{name}/staging")
async def list_staging(name: str, kb: KBDep, team: TeamDep) -> dict[str, Any]:
    return {"object": "list", "data": [s.model_dump() for s in await asyncio.to_thread(kb.list_staging, team, name)]}


@router.post("/collections/{name}/staging/{staging_id}/documents", response_model=StageDocumentsResponse)
async def stage_documents(
    name: str, staging_id: str, body: StageDocumentsRequest, kb: KBDep, team: TeamDep, settings: SettingsDep, request: Request
) -> StageDocumentsResponse:
    raws, pre_errors = _decode(body.documents, settings)
    done = await asyncio.to_thread(kb.stage_documents, team, name, staging_id, raws) if raws else []
    results = _merge(len(body.documents), pre_errors, done)
    return StageDocumentsResponse(collection=name, staging_id=staging_id, counts=_count(results, "staging", request),
                                  results=[_out(r) for r in results])


@router.post("/collections/{name}/staging/{staging_id}/commit", response_model=IngestResponse)
async def commit_staging(name: str, staging_id: str, body: CommitStagingRequest, kb: KBDep, team: TeamDep, request: Request) -> IngestResponse:
    report = await asyncio.to_thread(kb.commit_staging, team, name, staging_id, promote=body.promote)
    log.info("staging_committed", extra={"collection": name, "team": team, "version": report.version, "promoted": report.promoted})
    return _response(report, report.results, request)


@router.delete("/collections/{name}/staging/{staging_id}", status_code=204)
async def abort_staging(name: str, staging_id: str, kb: KBDep, team: TeamDep) -> Response:
    await asyncio.to_thread(kb.abort_staging, team, name, staging_id)
    return Response(status_code=204)


@router.post("/collections/{name}/documents:delete", response_model=list[DocResultOut])
async def delete_documents(name: str, body: DeleteRequest, kb: KBDep, team: TeamDep) -> list[DocResultOut]:
    results = await asyncio.to_thread(kb.delete_documents, team, name, body.ids)
    return [_out(r) for r in results]
