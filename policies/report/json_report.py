"""policy-report.json: summary counts and one record per finding (STYLE §6 "Report")."""

from __future__ import annotations

import json


def render(rep) -> str:
    return json.dumps(rep.as_dict(), indent=2, sort_keys=True) + "\n"
