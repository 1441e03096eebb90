"""TW-TAG-001: every taggable resource carries team (or shared), environment and cost-center."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Iterable

from tierwise.policies.engine import FAIL, PASS, UNKNOWN, CheckMeta, Index, Result, is_ref, result

REQUIRED = ("team", "environment", "cost-center")
TYPES_FILE = Path(__file__).resolve().parents[2] / "data" / "aws_taggable_resource_types.txt"


@lru_cache(maxsize=1)
def taggable_types() -> frozenset[str]:
    return frozenset(l.strip() for l in TYPES_FILE.read_text().splitlines() if l.strip() and not l.startswith("#"))


class RequiredTags:
    meta = CheckMeta(
        id="TW-TAG-001",
        title="Every taggable resource carries team, environment and cost-center",
        severity="MEDIUM",
        categories=("GENERAL_SECURITY", "COST"),
        resource_types=("aws_*",),
        rationale="Budgets filter on cost-center and chargeback reads team: an untagged resource is spend nobody "
                  "owns. Effective tags = provider default_tags + the resource's own tags (Terraform's tags_all).",
        fix="Keep provider default_tags (stacks/base.py) and set team/cost-center tags on team-owned resources; "
            "never blank a required tag.",
        protects="cost attribution: every dollar has an owner",
    )

    def run(self, index: Index) -> Iterable[Result]:
        m = self.meta
        types = taggable_types()
        for r in index.resources:
            if r.type not in types:
                continue
            if is_ref(r.body.get("tags")):
                yield result(m, UNKNOWN, r, f"{r.address}: tags is an expression ({r.body['tags']!r})")
                continue
            tags = index.effective_tags(r)
            missing = [k for k in REQUIRED if not str(tags.get(k, "")).strip()]
            if missing:
                yield result(m, FAIL, r, f"{r.address}: missing tags {missing} (effective tags: {sorted(tags)}); add them "
                                         "to the provider default_tags or the resource's tags", finding=f"Missing::{','.join(missing)}")
            else:
                yield result(m, PASS, r, f"{r.address}: team={tags['team']} environment={tags['environment']} "
                                         f"cost-center={tags['cost-center']}")
