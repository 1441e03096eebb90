"""Run checkov once over a synth dir: its Terraform checks on every cdk.tf.json, and its Kubernetes checks
on the manifests embedded as `kubernetes_manifest` resources (extracted to files, since checkov's
terraform_json runner does not look inside them). Started as a subprocess so our own checks run meanwhile."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tierwise.policies.engine import FAIL, PASS, Index, Result

FRAMEWORKS = ("terraform_json", "kubernetes")


def checkov_exe() -> str:
    here = Path(sys.executable).parent / "checkov"
    found = str(here) if here.exists() else shutil.which("checkov")
    if not found:
        raise FileNotFoundError("checkov is not installed in this environment (pip install checkov==3.3.30)")
    return found


def stage(index: Index, into: Path) -> Path:
    for stack in index.stacks:
        src = index.root / "stacks" / stack / "cdk.tf.json"
        (into / stack).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, into / stack / "cdk.tf.json")
    for r in index.of_type("kubernetes_manifest"):
        if r.manifest:
            d = into / "_k8s" / r.stack
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{r.name}.json").write_text(json.dumps(r.manifest))
    return into


@dataclass
class CheckovRun:
    proc: subprocess.Popen
    workdir: tempfile.TemporaryDirectory
    index: Index

    def results(self, timeout: float = 600) -> tuple[list[Result], str]:
        """(results, error). An error (crash, unparsable output) is reported as a failure by the caller."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            return [], "checkov timed out"
        finally:
            pass
        self.workdir.cleanup()
        reports = parse_output(out)
        if not reports:
            return [], f"checkov exited {self.proc.returncode} with no JSON report: {err.strip()[-500:]}"
        errs = [f"{r.get('check_type')}: {r['summary'].get('parsing_errors')} parsing errors"
                for r in reports if r.get("summary", {}).get("parsing_errors")]
        return convert(reports, self.index), "; ".join(errs)


def start(index: Index) -> CheckovRun:
    tmp = tempfile.TemporaryDirectory(prefix="tierwise-checkov-")
    root = stage(index, Path(tmp.name))
    cmd = [checkov_exe(), "-d", str(root), "--framework", *FRAMEWORKS, "--skip-download", "-o", "json"]
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false", "LOG_LEVEL": "ERROR"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return CheckovRun(proc, tmp, index)


def parse_output(text: str) -> list[dict]:
    """checkov prints one JSON value (a report, or a list of reports) — sometimes several in a row."""
    dec, i, reports, seen = json.JSONDecoder(), 0, [], set()
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        try:
            obj, i = dec.raw_decode(text, i)
        except json.JSONDecodeError:
            break
        for rep in obj if isinstance(obj, list) else [obj]:
            if isinstance(rep, dict) and "results" in rep and rep.get("check_type") not in seen:
                seen.add(rep.get("check_type"))
                reports.append(rep)
    return reports


def _locate(index: Index, check: dict) -> tuple[str, str, str]:
    """(address, construct path, file) of a checkov record in our vocabulary."""
    fp = str(check.get("file_path", "")).lstrip("/")
    parts = fp.split("/")
    if parts and parts[0] == "_k8s" and len(parts) == 3:
        r = index.get(parts[1], "kubernetes_manifest", parts[2].removesuffix(".json"))
    else:
        stack = parts[0] if parts else ""
        rid = str(check.get("resource", ""))
        rtype, _, name = rid.rpartition(".")
        rtype = rtype.split(".")[-1]
        r = index.get(stack, rtype, name)
        if r is None:  # checkov's terraform_json parser sometimes loses the type ("resource.NAME")
            r = next((x for x in index.resources if x.stack == stack and x.name == name), None)
    if r is None:
        return f"{fp}:{check.get('resource')}", "", fp
    return r.address, r.path, r.file


def convert(reports: list[dict], index: Index) -> list[Result]:
    out = []
    for rep in reports:
        res = rep.get("results", {})
        for status, key in ((PASS, "passed_checks"), (FAIL, "failed_checks")):
            for c in res.get(key, []) or []:
                addr, path, file = _locate(index, c)
                guideline = c.get("guideline") or ""
                out.append(Result(str(c.get("check_id")), status, addr,
                                  f"{addr}: {c.get('check_name')}" + ("" if status == PASS else
                                  f" (checkov {rep.get('check_type')}; keys {c.get('check_result', {}).get('evaluated_keys', [])})"),
                                  path=path, severity=str(c.get("severity") or "MEDIUM").upper(), title=str(c.get("check_name")),
                                  fix=guideline or "See the checkov policy documentation for this id.", source="checkov", file=file))
    return out
