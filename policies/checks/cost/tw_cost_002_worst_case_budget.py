"""TW-COST-002: each team's worst-case monthly spend is within its monthly budget."""

from __future__ import annotations

from typing import Iterable

from tierwise.policies.cost import cost_report
from tierwise.policies.engine import FAIL, PASS, UNKNOWN, CheckMeta, Index, Result, result


class WorstCaseWithinBudget:
    meta = CheckMeta(
        id="TW-COST-002",
        title="Each team's worst-case monthly spend fits its monthly budget",
        severity="HIGH",
        categories=("COST",),
        resource_types=("kubernetes_manifest", "aws_budgets_budget"),
        rationale="A budget alert fires after the money is spent; the quota and pool limits decide what can be "
                  "spent. Worst case = reachable GPU nodes x on-demand price x 730 h + Bedrock token budget x price.",
        fix="Lower teams[].gpu_quota or bedrock token budgets, or raise teams[].monthly_budget_usd, in "
            "environments/<env>.yaml; `tierwise cost --env <env>` shows the breakdown.",
        protects="spend: quotas cannot outspend a team's budget",
    )

    def run(self, index: Index) -> Iterable[Result]:
        m = self.meta
        rep = cost_report(index)
        for name, t in sorted(rep.teams.items()):
            anchor = t.queue
            if t.budget_usd is None:
                yield result(m, FAIL, anchor, f"team {name}: no monthly AWS Budget found (cost-center {t.cost_center or '?'}) "
                                              "to compare its worst case with; add teams[].monthly_budget_usd",
                             address=None if anchor else f"(team {name})")
                continue
            unknown = [n for n in t.notes if "unknown" in n or "no price" in n]
            bedrock = ("Bedrock budget not in synth output (tierwise.json has no teams[].bedrock): GPU only"
                       if t.bedrock_usd is None and not unknown else f"Bedrock ${t.bedrock_usd or 0:,.0f}")
            detail = (f"worst case ${t.total_usd:,.0f}/month (GPU ${t.gpu_usd:,.0f}: "
                      + ", ".join(f"{p} ${u:,.0f}" for p, u in sorted(t.gpu_usd_by_pool.items())) + f"; {bedrock}) "
                      f"vs budget ${t.budget_usd:,.0f} ({t.budget_address})")
            if t.total_usd > t.budget_usd:
                yield result(m, FAIL, anchor, f"team {name}: {detail}; lower gpu_quota or raise monthly_budget_usd",
                             finding=f"Team::{name}", address=None if anchor else f"(team {name})")
            elif unknown:
                yield result(m, UNKNOWN, anchor, f"team {name}: {detail}; {'; '.join(unknown)}", finding=f"Team::{name}")
            else:
                yield result(m, PASS, anchor, f"team {name}: {detail}", finding=f"Team::{name}")
