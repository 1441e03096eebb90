"""Plain text for terminals: failures first, then a one-line summary."""

from __future__ import annotations

from tierwise.policies.engine import FAIL, SUPPRESSED, UNKNOWN


def render(rep, verbose: bool = False) -> str:
    lines = [f"tierwise policy: environment {rep.environment} ({rep.synth_dir}), pack {rep.pack}, threshold {rep.threshold}"]
    for r in rep.results:
        if r.status in (FAIL, UNKNOWN) or verbose or r.status == SUPPRESSED:
            tag = {FAIL: "FAIL", UNKNOWN: "UNKNOWN", SUPPRESSED: "SUPPRESSED"}.get(r.status, r.status)
            lines.append(f"{tag:<10} {r.severity:<8} {r.full_id:<14} {r.message}")
            if r.status in (FAIL, UNKNOWN) and r.fix:
                lines.append(f"{'':<34}fix: {r.fix}")
            if r.suppression:
                lines.append(f"{'':<34}suppressed until {r.suppression['expires']} by {r.suppression['owner']}: {r.suppression['reason']}")
    for n in rep.notes:
        lines.append(f"note: {n}")
    c = rep.counts()
    lines.append(f"{c['passed']} passed, {c['failed']} failed, {c['suppressed']} suppressed, {c['unknown']} unknown, "
                 f"{c['errors']} errors -> {'FAIL' if rep.exit_code else 'PASS'}")
    return "\n".join(lines) + "\n"
