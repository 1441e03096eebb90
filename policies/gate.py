"""The gate: checkov (subprocess, started first) and tierwise checks (in-process) over one synth dir,
merged, suppressed, summarised. `tierwise policy` is a thin wrapper around `run_gate`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from tierwise.policies import catalog, checkov_runner, suppressions
from tierwise.policies.engine import FAIL, PASS, SEVERITIES, SUPPRESSED, UNKNOWN, Index, Result, load_index, run_checks


@dataclass
class GateReport:
    environment: str
    synth_dir: str
    pack: str
    threshold: str
    results: list[Result]
    checkov_version: str = "3.3.30"
    cost: dict | None = None
    cost_diff: dict | None = None
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        c = {k: 0 for k in ("passed", "failed", "suppressed", "unknown", "errors")}
        for r in self.results:
            if r.status == PASS:
                c["passed"] += 1
            elif r.status == SUPPRESSED:
                c["suppressed"] += 1
            elif r.status == UNKNOWN:
                c["unknown"] += 1
            elif r.status == FAIL:
                c["errors" if r.message.startswith("check error") or r.check_id == "TW-GATE-001" else "failed"] += 1
        return c

    def blocking(self) -> list[Result]:
        """Unsuppressed FAIL/UNKNOWN at or above the threshold; gate and suppression errors always block."""
        lvl = SEVERITIES.index(self.threshold)
        out = []
        for r in self.results:
            if r.status not in (FAIL, UNKNOWN):
                continue
            sev = SEVERITIES.index(r.severity) if r.severity in SEVERITIES else 1
            if sev >= lvl or r.check_id in ("TW-SUP-001", "TW-GATE-001") or r.message.startswith("check error"):
                out.append(r)
        return out

    @property
    def exit_code(self) -> int:
        return 1 if self.blocking() else 0

    def as_dict(self) -> dict:
        return {"environment": self.environment, "synth_dir": self.synth_dir, "pack": self.pack, "threshold": self.threshold,
                "summary": self.counts(), "exit_code": self.exit_code, "notes": self.notes,
                "results": [r.as_dict() for r in sorted(self.results, key=sort_key)],
                "cost": self.cost, "cost_diff": self.cost_diff}


ORDER = {FAIL: 0, UNKNOWN: 1, SUPPRESSED: 2, PASS: 3}


def sort_key(r: Result):
    sev = SEVERITIES.index(r.severity) if r.severity in SEVERITIES else 1
    return (ORDER.get(r.status, 4), -sev, r.check_id, r.address, r.finding)


def run_gate(synth_dir: Path, pack: str = "baseline", threshold: str = "LOW", use_checkov: bool = True,
             suppressions_file: Path | None = None, today: dt.date | None = None, index: Index | None = None) -> GateReport:
    index = index or load_index(Path(synth_dir))
    checks = catalog.load_pack(pack)
    run = checkov_runner.start(index) if use_checkov else None
    try:
        results = run_checks(index, checks)
    finally:
        ck, err = run.results() if run else ([], "")
    results += ck
    if err:
        results.append(Result("TW-GATE-001", FAIL, "(checkov)", f"checkov did not complete cleanly: {err}", severity="HIGH",
                              title="checkov ran and parsed every file", fix="Run the checkov command by hand to see why.",
                              source="checkov"))
    env = str(index.meta.get("environment") or Path(synth_dir).name)
    sups, errors = suppressions.load(suppressions_file)
    unsup = {c.meta.id for c in checks if c.meta.unsuppressible or c.meta.severity == "CRITICAL"}
    problems = suppressions.apply(results, sups, env, unsup, today=today,
                                  path_label=(suppressions_file or suppressions.DEFAULT_FILE).name,
                                  checkov_ran=use_checkov)
    results += errors + problems
    results = [r for r in results if r.status != "NOT_APPLICABLE"]
    rep = GateReport(env, str(synth_dir), pack, threshold, sorted(results, key=sort_key))
    if not index.meta.get("teams"):
        rep.notes.append("tierwise.json has no `teams`: TW-COST-002 counts GPU spend only (Bedrock token budgets are not in the synth output)")
    return rep
