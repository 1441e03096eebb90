from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request

from ..deps import KBDep, SettingsDep, TeamDep
from ..documents import DocumentError, RawDocument, decode_base64
from ..engine import DocResult, InvalidRequest
from ..schemas import DeleteRequest, DocResultOut, IngestRequest, IngestResponse

router = APIRouter(prefix="/v1")
log = logging.getLogger("tierwise.rag.api")


def _out(r: DocResult) -> DocResultOut:
    return DocResultOut(id=r.id, status=r.status, chunks=r.chunks, error=r.error)


@router.post("/ingest", response_model=IngestResponse)
async def ingest(body: IngestRequest, kb: KBDep, team: TeamDep, settings: SettingsDep, request: Request) -> IngestResponse:
    if len(body.documents) > settings.max_batch_documents:
        raise InvalidRequest(f"at most {settings.max_batch_documents} documents per request", "documents")
    raws: list[RawDocument] = []
    pre_errors: dict[int, DocResult] = {}
    for i, d in enumerate(body.documents):
        try:
            content: str | bytes = d.text if d.text is not None else decode_base64(d.content_base64 or "")
        except DocumentError as exc:
            pre_errors[i] = DocResult(d.id, "error", error=exc.as_dict())
            continue
        raws.append(RawDocument(d.id, content, d.content_type, d.encoding, dict(d.metadata), d.source_version))
    if raws:
        report = await asyncio.to_thread(kb.ingest, team, body.collection, raws, promote=body.promote)
        done = iter(report.results)
        results = [pre_errors[i] if i in pre_errors else next(done) for i in range(len(body.documents))]
        kind, version, created, promoted = report.kind, report.version, report.created_version, report.promoted
    else:
        info = kb.get_collection(team, body.collection)
        results = [pre_errors[i] for i in range(len(body.documents))]
        kind, version, created, promoted = info.kind, None, False, False
    counts: dict[str, int] = {}
    m = request.app.state.metrics
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
        m.documents.labels(kind, r.status).inc()
    log.info("ingest", extra={"collection": body.collection, "team": team, "counts": counts})
    return IngestResponse(collection=body.collection, kind=kind, version=version, created_version=created, promoted=promoted,
                          counts=counts, results=[_out(r) for r in results])


@router.post("/collections/{name}/documents:delete", response_model=list[DocResultOut])
async def delete_documents(name: str, body: DeleteRequest, kb: KBDep, team: TeamDep) -> list[DocResultOut]:
    results = await asyncio.to_thread(kb.delete_documents, team, name, body.ids)
    return [_out(r) for r in results]
