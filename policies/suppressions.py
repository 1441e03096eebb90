"""Suppressions (policies/suppressions.yaml): accepted risks with an owner, a reason and an expiry date.

Entry: {check, resource, reason, owner, expires, environment?}. `check` is an id, optionally with a granular
finding (`TW-IAM-002[Action::s3:*]`); `resource` is a glob matched against the construct path and the address.
The run fails (as findings with check id TW-SUP-001) when an entry expired, expires more than 90 days out, has a
reason shorter than 20 characters, lacks an owner, targets an unsuppressible check, or matches nothing.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from tierwise.policies.engine import FAIL, SUPPRESSED, Result

DEFAULT_FILE = Path(__file__).parent / "suppressions.yaml"
MAX_DAYS = 90
MIN_REASON = 20
SUP_ID = "TW-SUP-001"
ENTRY = re.compile(r"^(?P<check>[A-Z0-9_]+(-[A-Z]+-\d{3})?)(\[(?P<finding>.+)\])?$")


@dataclass
class Suppression:
    check: str
    finding: str
    resource: str
    reason: str
    owner: str
    expires: dt.date | None
    environment: str
    line: int
    used: int = 0

    def matches(self, r: Result, environment: str) -> bool:
        if self.environment and self.environment != environment:
            return False
        if r.check_id != self.check or (self.finding and r.finding != self.finding):
            return False
        return any(fnmatch.fnmatchcase(x, self.resource) for x in (r.path, r.address) if x)


def load(path: Path | None = None) -> tuple[list[Suppression], list[Result]]:
    path = path or DEFAULT_FILE
    if not path.exists():
        return [], []
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        return [], [Result(SUP_ID, FAIL, str(path), f"{path}: not valid YAML: {e}", severity="HIGH", title="Suppressions are valid")]
    out, errors = [], []
    for i, e in enumerate(data.get("suppressions") or []):
        where = f"{path.name} entry {i + 1}"
        if not isinstance(e, dict):
            errors.append(Result(SUP_ID, FAIL, where, f"{where}: not a mapping"))
            continue
        m = ENTRY.match(str(e.get("check", "")))
        exp = e.get("expires")
        if isinstance(exp, str):
            try:
                exp = dt.date.fromisoformat(exp)
            except ValueError:
                exp = None
        out.append(Suppression(m.group("check") if m else str(e.get("check", "")), (m.group("finding") or "") if m else "",
                               str(e.get("resource", "")), str(e.get("reason", "") or ""), str(e.get("owner", "") or ""),
                               exp if isinstance(exp, dt.date) else None, str(e.get("environment", "") or ""), i + 1))
        if not m:
            errors.append(Result(SUP_ID, FAIL, where, f"{where}: check {e.get('check')!r} is not CHECK_ID or CHECK_ID[finding]"))
    return out, errors


def apply(results: list[Result], sups: list[Suppression], environment: str, unsuppressible: set[str],
          today: dt.date | None = None, path_label: str = "suppressions.yaml", checkov_ran: bool = True) -> list[Result]:
    """Mark matching FAIL/UNKNOWN results SUPPRESSED (they stay in the report); return lifecycle failures."""
    today = today or dt.date.today()
    problems: list[Result] = []
    valid = []
    for s in sups:
        where = f"{path_label} entry {s.line} ({s.check}{'[' + s.finding + ']' if s.finding else ''} on {s.resource or '?'})"
        why = []
        if not s.resource:
            why.append("has no resource")
        if "[" in s.resource:
            why.append("puts a finding id in the resource field; write it as CHECK[finding] in `check`")
        if len(s.reason.strip()) < MIN_REASON:
            why.append(f"reason {s.reason!r} is shorter than {MIN_REASON} characters; say why the risk is accepted")
        if not s.owner:
            why.append("has no owner")
        if s.expires is None:
            why.append("has no valid `expires` date (YYYY-MM-DD)")
        elif s.expires < today:
            why.append(f"expired on {s.expires.isoformat()}; fix the finding or renew with a new review")
        elif (s.expires - today).days > MAX_DAYS:
            why.append(f"expires {s.expires.isoformat()}, more than {MAX_DAYS} days ahead")
        if s.check in unsuppressible:
            why.append(f"{s.check} is unsuppressible (CRITICAL); fix the finding")
        if why:
            problems.append(Result(SUP_ID, FAIL, where, f"{where}: " + "; ".join(why), severity="HIGH",
                                   title="Suppressions are justified, owned and unexpired",
                                   fix="Edit policies/suppressions.yaml: reason >= 20 chars, owner, expires <= 90 days ahead."))
        else:
            valid.append(s)
    for r in results:
        if r.status not in (FAIL, "UNKNOWN"):
            continue
        for s in valid:
            if s.matches(r, environment):
                s.used += 1
                r.status = SUPPRESSED
                r.suppression = {"reason": s.reason, "owner": s.owner, "expires": s.expires.isoformat() if s.expires else None,
                                 "entry": s.line}
                break
    for s in valid:
        if not checkov_ran and not s.check.startswith("TW-"):
            continue  # its engine did not run: cannot tell whether it is stale
        if s.used == 0 and (not s.environment or s.environment == environment):
            problems.append(Result(SUP_ID, FAIL, f"{path_label} entry {s.line}",
                                   f"{path_label} entry {s.line} ({s.check} on {s.resource}) matches no finding in "
                                   f"environment {environment!r}; delete it", severity="MEDIUM",
                                   title="Suppressions are justified, owned and unexpired",
                                   fix="Remove stale entries from policies/suppressions.yaml."))
    return problems
