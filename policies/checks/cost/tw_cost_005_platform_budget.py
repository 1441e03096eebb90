"""TW-COST-005: the platform's limit-bound worst case (every NodePool and node group full) fits the platform budget."""

from __future__ import annotations

import math
from typing import Iterable

from tierwise.policies.cost import cost_report
from tierwise.policies.engine import FAIL, PASS, UNKNOWN, CheckMeta, Index, Result, result

FINDING = "Platform::budget"


class PlatformWorstCaseWithinBudget:
    meta = CheckMeta(
        id="TW-COST-005",
        title="The platform's worst case at its NodePool limits fits the declared platform budget",
        severity="HIGH",
        categories=("COST",),
        resource_types=("kubernetes_manifest", "aws_eks_node_group", "aws_budgets_budget"),
        rationale="A NodePool limit is the financial fence: any pod with the pool's toleration makes Karpenter buy "
                  "nodes up to it, whichever team asked, so team quotas do not bound the bill. Worst case = every GPU "
                  "NodePool's dearest fleet within its GPU/CPU limits + every CPU NodePool's cpu limit x the dearest "
                  "$/vCPU of its instance categories + every node group's max_size x its dearest type (on-demand, "
                  "730 h) + the teams' Bedrock token budgets. Fixed costs (control plane, NAT, firewall) are not in it.",
        fix="Lower gpu_pools[].gpu_limit / cpu_limit or agent_pool.cpu_limit, or raise platform.monthly_budget_usd, in "
            "environments/<env>.yaml; `tierwise cost --env <env>` shows each fleet.",
        protects="spend: the NodePool limits cannot outspend the platform's budget",
    )

    def run(self, index: Index) -> Iterable[Result]:
        m = self.meta
        plat = cost_report(index).platform
        if not plat.fleets:
            return  # no NodePool and no node group: nothing can be bought, nothing to bound
        for f in plat.fleets:  # each fence: bounded (and what it costs full), unbounded, or unknown
            what = f"{f.kind} {f.name!r}: {f.limit} -> worst fleet {f.fleet}"
            if f.monthly_usd is None:
                yield result(m, UNKNOWN, f.resource, f"{f.resource.address}: {what}; {'; '.join(f.notes)}", finding=f"Fleet::{f.name}")
            elif math.isinf(f.monthly_usd):
                yield result(m, FAIL, f.resource, f"{f.resource.address}: {what} ({'; '.join(f.notes)}); set a CPU/GPU "
                                                  "limit on it (gpu_pools[].gpu_limit, agent_pool.cpu_limit)",
                             finding=f"Fleet::{f.name}")
            else:
                yield result(m, PASS, f.resource, f"{f.resource.address}: {what} = ${f.monthly_usd:,.0f}/month",
                             finding=f"Fleet::{f.name}")
        budget_res = next((r for r in index.of_type("aws_budgets_budget") if r.address == plat.budget_address), None)
        if plat.budget_usd is None:
            yield result(m, FAIL, None, "no platform budget in the synth output (an aws_budgets_budget tagged "
                                        "tierwise.io/budget-scope=platform) to bound the NodePool limits against; "
                                        "set platform.monthly_budget_usd in environments/<env>.yaml",
                         finding=FINDING, address="(platform)")
            return
        lines = ", ".join(f"{f.name} {_usd(f.monthly_usd)}" for f in sorted(plat.fleets, key=lambda f: -_key(f.monthly_usd)))
        bedrock = ("Bedrock budgets not in synth output (tierwise.json has no teams[].bedrock)" if plat.bedrock_usd is None
                   else f"Bedrock ${plat.bedrock_usd:,.0f}")
        # the fleets whose reach is known already bound the total from below
        floor = sum(f.monthly_usd for f in plat.fleets if f.monthly_usd is not None) + (plat.bedrock_usd or 0.0)
        unknown = [f.name for f in plat.fleets if f.monthly_usd is None]
        detail = (f"platform worst case {_usd(None if unknown else floor)}/month at the limits ({lines}; {bedrock}) vs "
                  f"platform budget ${plat.budget_usd:,.0f} ({plat.budget_address})")
        if floor > plat.budget_usd:
            top = max(plat.fleets, key=lambda f: _key(f.monthly_usd))
            over = "without bound" if math.isinf(floor) else f"by ${floor - plat.budget_usd:,.0f}"
            yield result(m, FAIL, budget_res, f"{detail}: over {over} (largest: {top.name}, {top.limit} -> {top.fleet}); "
                                              "lower the NodePool limits or raise platform.monthly_budget_usd",
                         finding=FINDING)
        elif unknown:
            yield result(m, UNKNOWN, budget_res, f"{detail}; reach unknown for {', '.join(unknown)}", finding=FINDING)
        else:
            yield result(m, PASS, budget_res, detail, finding=FINDING)


def _key(v: float | None) -> float:
    return -1.0 if v is None else v


def _usd(v: float | None) -> str:
    return "unknown" if v is None else ("unbounded" if math.isinf(v) else f"${v:,.0f}")
