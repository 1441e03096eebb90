"""SARIF 2.1.0 for GitHub code scanning. Validated in tests against the OASIS schema (errata01)."""

from __future__ import annotations

import json

from tierwise.policies.engine import FAIL, PASS, SUPPRESSED, UNKNOWN

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVEL = {"CRITICAL": "error", "HIGH": "error", "MEDIUM": "warning", "LOW": "note"}
SCORE = {"CRITICAL": "9.5", "HIGH": "8.0", "MEDIUM": "5.5", "LOW": "3.0"}


def render(rep) -> str:
    rules: dict[str, dict] = {}
    results = []
    for r in rep.results:
        if r.status == PASS:
            continue
        if r.check_id not in rules:
            rules[r.check_id] = {
                "id": r.check_id, "name": r.check_id.replace("-", ""),
                "shortDescription": {"text": r.title or r.check_id},
                "help": {"text": r.fix or r.title or r.check_id},
                "defaultConfiguration": {"level": LEVEL.get(r.severity, "warning")},
                "properties": {"security-severity": SCORE.get(r.severity, "5.5"), "tags": ["security", r.source]},
            }
        uri = r.file or "cdktf.out"
        res = {
            "ruleId": r.check_id,
            "ruleIndex": list(rules).index(r.check_id),
            "level": LEVEL.get(r.severity, "warning") if r.status in (FAIL, SUPPRESSED) else "note",
            "kind": "fail" if r.status in (FAIL, SUPPRESSED) else "review",
            "message": {"text": r.message + (f" Fix: {r.fix}" if r.fix else "")},
            "locations": [{
                "physicalLocation": {"artifactLocation": {"uri": uri, "uriBaseId": "SYNTHDIR"}},
                "logicalLocations": [{"name": r.address, "fullyQualifiedName": r.path or r.address, "kind": "resource"}],
            }],
            "partialFingerprints": {"tierwise/v1": f"{r.full_id}|{r.path or r.address}"},
            "properties": {"status": r.status, "severity": r.severity, "source": r.source},
        }
        if r.status == SUPPRESSED and r.suppression:
            res["suppressions"] = [{"kind": "external", "status": "accepted",
                                    "justification": f"{r.suppression['reason']} (owner {r.suppression['owner']}, "
                                                     f"expires {r.suppression['expires']})"}]
        results.append(res)
    doc = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "tierwise-policy", "informationUri": "https://github.com/tierwise/tierwise",
                                "version": "0.1.0", "rules": list(rules.values())}},
            "originalUriBaseIds": {"SYNTHDIR": {"uri": "cdktf.out/"}},
            "invocations": [{"executionSuccessful": not any(r.check_id == "TW-GATE-001" for r in rep.results),
                             "exitCode": rep.exit_code}],
            "results": results,
            "properties": {"environment": rep.environment, "summary": rep.counts()},
        }],
    }
    return json.dumps(doc, indent=2) + "\n"
