"""``tierwise-guard`` (and ``tierwise guard ...`` through the main CLI's git-style dispatch).

    tierwise guard review list [--status pending|approved|denied|all] [--json]
    tierwise guard review show TICKET_ID
    tierwise guard review approve TICKET_ID --reviewer NAME [--note TEXT]
    tierwise guard review deny TICKET_ID --reviewer NAME [--note TEXT]
    tierwise guard audit verify [--path FILE]

Settings come from TIERWISE_GUARDRAILS_* (the same as the service: data dir, queue, HMAC key).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="tierwise guardrails: human review queue and audit trail", no_args_is_help=True, add_completion=False)
review = typer.Typer(help="List, show, approve or deny escalated tickets", no_args_is_help=True)
audit = typer.Typer(help="Audit-trail tools", no_args_is_help=True)
app.add_typer(review, name="review")
app.add_typer(audit, name="audit")


def _settings():
    from pydantic import ValidationError

    from tierwise_guardrails.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        typer.echo(f"error: invalid TIERWISE_GUARDRAILS_* settings:\n{exc}", err=True)
        raise typer.Exit(2) from exc


def _queue(settings):
    from tierwise_guardrails.review_queue import build_queue

    return build_queue(settings)


def _print_ticket(t, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(t.as_dict(), indent=2, sort_keys=True))
        return
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t.created_at))
    typer.echo(f"{t.id}  {t.status:<8}  {when}Z  team={t.team or '-'}  {t.direction}  {t.reason}")


@review.command("list")
def review_list(
    status: str = typer.Option("pending", help="pending, approved, denied or all"),
    limit: int = typer.Option(50, min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", help="One JSON array"),
) -> None:
    """List tickets (oldest first)."""
    if status not in ("pending", "approved", "denied", "all"):
        typer.echo(f"error: --status {status!r} is not one of pending, approved, denied, all", err=True)
        raise typer.Exit(2)
    q = _queue(_settings())
    tickets = q.list(None if status == "all" else status, limit)  # type: ignore[arg-type]
    if as_json:
        typer.echo(json.dumps([t.as_dict() for t in tickets], indent=2, sort_keys=True))
    elif not tickets:
        typer.echo(f"no {status} tickets")
    for t in tickets if not as_json else []:
        _print_ticket(t, False)


@review.command("show")
def review_show(ticket_id: str) -> None:
    """Show one ticket with its redacted text and findings (JSON)."""
    from tierwise_guardrails.review_queue import TicketNotFound

    try:
        _print_ticket(_queue(_settings()).get(ticket_id), True)
    except TicketNotFound:
        typer.echo(f"error: ticket {ticket_id!r} not found", err=True)
        raise typer.Exit(1)


def _decide(ticket_id: str, approve: bool, reviewer: str, note: Optional[str]) -> None:
    from tierwise_guardrails.audit import AuditLog
    from tierwise_guardrails.review_queue import TicketAlreadyDecided, TicketNotFound

    s = _settings()
    q = _queue(s)
    try:
        t = q.decide(ticket_id, approve=approve, reviewer=reviewer, note=note)
    except TicketNotFound:
        typer.echo(f"error: ticket {ticket_id!r} not found", err=True)
        raise typer.Exit(1)
    except TicketAlreadyDecided as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1)
    AuditLog(s.resolved_audit_path, s.key_bytes).append(
        {"ts": time.time(), "event": "review", "ticket_id": t.id, "status": t.status, "reviewer": reviewer}
    )
    _print_ticket(t, False)


@review.command("approve")
def review_approve(ticket_id: str, reviewer: str = typer.Option(..., help="Who approves"), note: Optional[str] = None) -> None:
    """Approve a pending ticket (the escalated request may proceed)."""
    _decide(ticket_id, True, reviewer, note)


@review.command("deny")
def review_deny(ticket_id: str, reviewer: str = typer.Option(..., help="Who denies"), note: Optional[str] = None) -> None:
    """Deny a pending ticket."""
    _decide(ticket_id, False, reviewer, note)


@audit.command("verify")
def audit_verify(path: Optional[Path] = typer.Option(None, help="Audit file (default: the configured one)")) -> None:
    """Check every MAC and link; exit 1 if any record was edited, removed or reordered."""
    from tierwise_guardrails.audit import verify_file

    s = _settings()
    p = path or s.resolved_audit_path
    if not p.exists():
        typer.echo(f"error: audit file {p} does not exist", err=True)
        raise typer.Exit(2)
    rep = verify_file(p, s.key_bytes)
    if rep.ok:
        typer.echo(f"OK: {rep.records} records, chain intact, head seq={rep.head_seq} mac={rep.head_mac}")
        return
    typer.echo(f"FAILED: {len(rep.problems)} problem(s) in {rep.records} records", err=True)
    for pr in rep.problems:
        typer.echo(f"  - {pr}", err=True)
    raise typer.Exit(1)


def main() -> None:
    app(prog_name="tierwise-guard")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
