"""JUnit XML: one testsuite per check id, one testcase per resource verdict (CI test tabs render it)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

from tierwise.policies.engine import FAIL, SUPPRESSED, UNKNOWN


def render(rep) -> str:
    by: dict[str, list] = defaultdict(list)
    for r in rep.results:
        by[r.check_id].append(r)
    root = ET.Element("testsuites", name=f"tierwise policy {rep.environment}")
    tot = defaultdict(int)
    for cid, rs in sorted(by.items()):
        fails = sum(r.status in (FAIL, UNKNOWN) for r in rs)
        skipped = sum(r.status == SUPPRESSED for r in rs)
        suite = ET.SubElement(root, "testsuite", name=cid, tests=str(len(rs)), failures=str(fails), errors="0",
                              skipped=str(skipped))
        tot["tests"] += len(rs)
        tot["failures"] += fails
        tot["skipped"] += skipped
        for r in rs:
            case = ET.SubElement(suite, "testcase", classname=cid, name=f"{r.full_id} {r.address}")
            if r.status in (FAIL, UNKNOWN):
                f = ET.SubElement(case, "failure", message=r.message[:500], type=f"{r.status}:{r.severity}")
                f.text = f"{r.message}\nfix: {r.fix}"
            elif r.status == SUPPRESSED:
                s = r.suppression or {}
                ET.SubElement(case, "skipped", message=f"suppressed until {s.get('expires')}: {s.get('reason')}")
    for k, v in tot.items():
        root.set(k, str(v))
    root.set("errors", "0")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
