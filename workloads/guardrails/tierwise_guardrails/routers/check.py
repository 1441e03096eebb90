from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from tierwise_guardrails.deps import GuardDep, MetricsDep
from tierwise_guardrails.engine import CheckResult, InputTooLarge
from tierwise_guardrails.schemas import CheckRequest, error_body

router = APIRouter()
log = logging.getLogger("tierwise.guardrails")


@router.post("/v1/check", response_model=CheckResult, responses={202: {"model": CheckResult}, 413: {}})
async def check(body: CheckRequest, request: Request, guard: GuardDep, metrics: MetricsDep):
    if body.model_extra:
        log.info("unknown_request_fields", extra={"unknown_fields": sorted(body.model_extra)})
    messages = [m.model_dump() for m in body.messages] if body.messages is not None else None
    try:
        # CPU-bound (NER): run off the event loop so health probes stay responsive.
        result = await run_in_threadpool(
            guard.check, body.direction, text=body.text, messages=messages, team=body.team, context=body.context, channel=body.channel,
            request_id=request.headers.get("x-request-id"),
        )
    except InputTooLarge as exc:
        return JSONResponse(error_body(str(exc), "invalid_request_error", "input_too_large"), status_code=413)
    metrics.decisions.labels(body.direction, result.decision).inc()
    for f in result.findings:
        metrics.findings.labels(body.direction, f["type"]).inc()
    for stage, ms in result.timing_ms.items():
        metrics.latency.labels(stage).observe(ms / 1000)
    request.state.log_extra = {"team": body.team, "direction": body.direction, "decision": result.decision, "ticket_id": result.ticket_id}
    payload = result.as_dict()
    # keyed hashes stay in the audit trail
    payload["findings"] = [{k: v for k, v in f.items() if k != "value_hmac"} for f in payload["findings"]]
    status = 202 if result.decision == "escalate" else 200
    headers = {"Location": f"/v1/tickets/{result.ticket_id}"} if result.ticket_id else None
    return JSONResponse(payload, status_code=status, headers=headers)
