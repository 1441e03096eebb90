"""TW-COST-003: every team has an AWS Budget with at least one notification."""

from __future__ import annotations

from typing import Iterable

from tierwise.policies.cost import teams_from_index
from tierwise.policies.engine import FAIL, PASS, CheckMeta, Index, Result, as_list, result


class TeamBudgetAlerts:
    meta = CheckMeta(
        id="TW-COST-003",
        title="Every team has a monthly AWS Budget that notifies someone",
        severity="MEDIUM",
        categories=("COST",),
        resource_types=("aws_budgets_budget",),
        rationale="Quotas bound the worst case; the budget alert tells the team when real spend approaches it.",
        fix="Set teams[].monthly_budget_usd and teams[].budget_alert_emails in environments/<env>.yaml "
            "(constructs/governance TeamBudgets).",
        protects="spend visibility: each team hears about its spend before month end",
    )

    def run(self, index: Index) -> Iterable[Result]:
        m = self.meta
        teams = teams_from_index(index)
        for name, t in sorted(teams.items()):
            if not t.budget_address:
                yield result(m, FAIL, t.queue, f"team {name} (cost-center {t.cost_center or '?'}) has no aws_budgets_budget "
                                               f"filtered on user:cost-center${t.cost_center or '<cc>'}; add one",
                             finding=f"Team::{name}", address=None if t.queue else f"(team {name})")
                continue
            b = next(r for r in index.of_type("aws_budgets_budget") if r.address == t.budget_address)
            notes = [n for n in as_list(b.body.get("notification")) if isinstance(n, dict)
                     and (as_list(n.get("subscriber_sns_topic_arns")) or as_list(n.get("subscriber_email_addresses")))]
            if not notes:
                yield result(m, FAIL, b, f"{b.address}: budget for team {name} has no notification with a subscriber; "
                                         "set teams[].budget_alert_emails", finding=f"Team::{name}")
            else:
                yield result(m, PASS, b, f"{b.address}: team {name} budget with {len(notes)} notifications",
                             finding=f"Team::{name}")
