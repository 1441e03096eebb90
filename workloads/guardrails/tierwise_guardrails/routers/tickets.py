from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from tierwise_guardrails.deps import GuardDep
from tierwise_guardrails.review_queue import Ticket, TicketAlreadyDecided, TicketNotFound
from tierwise_guardrails.schemas import ReviewRequest, error_body

router = APIRouter()


def _missing(ticket_id: str) -> JSONResponse:
    return JSONResponse(error_body(f"ticket {ticket_id!r} not found", "not_found_error", "ticket_not_found", "ticket_id"), status_code=404)


@router.get("/v1/tickets/{ticket_id}", response_model=Ticket)
async def get_ticket(ticket_id: str, guard: GuardDep):
    try:
        return (await run_in_threadpool(guard.queue.get, ticket_id)).as_dict()
    except TicketNotFound:
        return _missing(ticket_id)


@router.get("/v1/tickets", response_model=list[Ticket])
async def list_tickets(guard: GuardDep, status: str | None = "pending", limit: int = 50):
    if status not in (None, "pending", "approved", "denied", "all"):
        return JSONResponse(error_body(f"status {status!r} is not one of pending, approved, denied, all", "invalid_request_error", None, "status"), status_code=400)
    return [t.as_dict() for t in await run_in_threadpool(guard.queue.list, None if status == "all" else status, min(max(limit, 1), 500))]


async def _decide(ticket_id: str, approve: bool, body: ReviewRequest, guard) -> object:
    try:
        t = await run_in_threadpool(lambda: guard.record_review(ticket_id, approve=approve, reviewer=body.reviewer, note=body.note))
    except TicketNotFound:
        return _missing(ticket_id)
    except TicketAlreadyDecided as exc:
        return JSONResponse(error_body(str(exc), "conflict_error", "ticket_already_decided", "ticket_id"), status_code=409)
    return t.as_dict()


@router.post("/v1/tickets/{ticket_id}/approve", response_model=Ticket)
async def approve(ticket_id: str, body: ReviewRequest, guard: GuardDep):
    return await _decide(ticket_id, True, body, guard)


@router.post("/v1/tickets/{ticket_id}/deny", response_model=Ticket)
async def deny(ticket_id: str, body: ReviewRequest, guard: GuardDep):
    return await _decide(ticket_id, False, body, guard)
