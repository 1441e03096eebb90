"""Event API: apply an S3 event notification with inline objects (the local stand-in for the SQS consumer)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from ..deps import KBDep, SettingsDep, TeamDep
from ..engine import InvalidRequest
from ..events import EventFormatError, S3EventApplier, parse_s3_notification

router = APIRouter(prefix="/v1/events")


@router.post("/s3")
async def s3_notification(request: Request, kb: KBDep, team: TeamDep, settings: SettingsDep) -> dict[str, Any]:
    """Apply one S3 event notification (the SQS message body) whose objects are sent inline:
    ``{"notification": {...Records...}, "objects": {"<bucket>/<key>": "<text>"}}``. This is the
    local stand-in for the SQS consumer; the events are applied under the caller's team."""
    body = await request.json()
    if not isinstance(body, dict) or "notification" not in body:
        raise InvalidRequest("body must be {'notification': <S3 event JSON>, 'objects': {...}}", "notification")
    try:
        events = parse_s3_notification(body["notification"])
    except EventFormatError as exc:
        raise InvalidRequest(str(exc), "notification") from None
    objects: dict[str, str] = body.get("objects") or {}
    sources = [s.model_copy(update={"team": team}) for s in settings.s3_sources]

    def fetch(bucket: str, key: str, _version: str | None) -> bytes:
        try:
            return objects[f"{bucket}/{key}"].encode("utf-8")
        except KeyError:
            raise InvalidRequest(f"objects lacks {bucket}/{key}", "objects") from None

    results = await asyncio.to_thread(S3EventApplier(kb, sources, fetch).apply, events)
    return {"object": "list", "events": len(events), "data": [{"id": r.id, "status": r.status, "chunks": r.chunks, "error": r.error} for r in results]}
