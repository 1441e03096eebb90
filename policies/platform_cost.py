"""The platform's worst case: what every compute fence can buy with no team asking, against the platform budget.

A NodePool limit is a financial fence, not a quota: any pod that tolerates the pool's taint makes Karpenter
launch nodes up to `spec.limits`, whoever owns the pod. So the platform's worst month is bounded by the limits
alone, never by the teams' Kueue quotas (those only attribute spend, see cost.team_costs):

- GPU NodePools: the most expensive fleet the GPU and CPU limits admit (cost.pools, reused here).
- CPU NodePools (e.g. agents): `spec.limits.cpu` vCPUs x the highest on-demand USD per vCPU-hour of the
  instance categories the pool may pick (prices.json `cpu_per_vcpu_ceiling`); a pool without a CPU limit
  is unbounded.
- EKS managed node groups: `scaling_config.max_size` x the dearest of its `instance_types`.
- Bedrock: the teams' declared token budgets x model prices (the router enforces them).

All at on-demand prices (spot never costs more) for 730 h. The platform budget is the monthly AWS Budget the
governance stack tags `tierwise.io/budget-scope: platform` (environments/<env>.yaml `platform.monthly_budget_usd`).
Fixed costs (EKS control plane, NAT, firewall endpoints, S3, data transfer) are not in this bound.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from tierwise.policies.engine import Index, Resource, as_list

SCOPE_TAG = "tierwise.io/budget-scope"
CPU = "cpu"


@dataclass
class Fleet:
    """One compute fence and what it costs when filled: a GPU NodePool, a CPU NodePool or a managed node group."""

    name: str
    kind: str  # "gpu-nodepool" | "cpu-nodepool" | "node-group"
    resource: Resource
    limit: str  # what bounds it, for humans: "8 GPUs, 96 vCPUs", "16 vCPUs", "max 3 x m7i.large"
    fleet: str  # the worst fleet: "1 x p4d.24xlarge", "16 vCPUs x $0.0826", "3 x m7i.large"
    monthly_usd: float | None  # None: reach unknown (see notes) or unbounded (math.inf)
    notes: list[str] = field(default_factory=list)


@dataclass
class PlatformCost:
    budget_usd: float | None
    budget_address: str
    fleets: list[Fleet]
    bedrock_usd: float | None  # None: Bedrock budgets not in the synth output
    notes: list[str] = field(default_factory=list)

    @property
    def compute_usd(self) -> float | None:
        vals = [f.monthly_usd for f in self.fleets]
        return None if any(v is None for v in vals) else sum(vals)

    @property
    def total_usd(self) -> float | None:
        c = self.compute_usd
        return None if c is None else c + (self.bedrock_usd or 0.0)

    def as_dict(self) -> dict:
        """JSON-safe: an unbounded or unknown amount is null, and its `*_status` says which."""
        def amount(v: float | None) -> float | None:
            return None if v is None or math.isinf(v) else round(v, 2)

        def status(v: float | None) -> str:
            return "unknown" if v is None else "unbounded" if math.isinf(v) else "bounded"

        return {"budget_usd": self.budget_usd, "budget_address": self.budget_address,
                "fleets": [{"name": f.name, "kind": f.kind, "limit": f.limit, "worst_fleet": f.fleet,
                            "monthly_usd": amount(f.monthly_usd), "status": status(f.monthly_usd), "notes": f.notes}
                           for f in self.fleets],
                "compute_usd": amount(self.compute_usd), "bedrock_usd": amount(self.bedrock_usd),
                "total_usd": amount(self.total_usd), "total_status": status(self.total_usd), "notes": self.notes}


def platform_budget(index: Index) -> tuple[float | None, str, list[str]]:
    """(limit USD, address, notes) of the monthly COST budget tagged as the platform's."""
    found = [b for b in index.of_type("aws_budgets_budget")
             if isinstance(b.body.get("tags"), dict) and b.body["tags"].get(SCOPE_TAG) == "platform"]
    notes = []
    monthly = [b for b in found if b.body.get("time_unit", "MONTHLY") == "MONTHLY" and b.body.get("budget_type", "COST") == "COST"]
    if len(found) != len(monthly):
        notes.append(f"{len(found) - len(monthly)} platform-tagged budget(s) not MONTHLY COST: ignored")
    if not monthly:
        return None, "", notes
    if len(monthly) > 1:
        notes.append("several platform budgets: " + ", ".join(b.address for b in monthly) + "; the lowest counts")
    from tierwise.policies.cost import quantity

    best = min(monthly, key=lambda b: quantity(b.body.get("limit_amount")) or math.inf)
    return quantity(best.body.get("limit_amount")), best.address, notes


def cpu_ceiling(prices: dict, region: str, categories: list[str]) -> tuple[float | None, str]:
    """Highest USD per vCPU-hour over the reference types of `categories` ((None, why) when a category is unknown)."""
    refs = prices.get("cpu_per_vcpu_ceiling", {}).get("categories", {})
    table = prices.get("ec2_on_demand", {}).get("regions", {}).get(region, {})
    best, best_t = 0.0, ""
    for cat in categories:
        types = refs.get(cat)
        if not types:
            return None, f"instance category {cat!r} has no reference types in prices.json cpu_per_vcpu_ceiling"
        for t, vcpus in types.items():
            if t not in table:
                return None, f"{t}: no on-demand price for {region} in prices.json"
            if table[t] / vcpus > best:
                best, best_t = table[t] / vcpus, t
    return best, best_t


def cpu_nodepool_fleet(np: Resource, region: str, prices: dict) -> Fleet:
    from tierwise.policies.cost import HOURS_PER_MONTH, _spec, quantity

    spec, tspec, _ = _spec(np)
    limits = spec.get("limits") if isinstance(spec.get("limits"), dict) else {}
    name = np.k8s_name
    cpu = quantity(limits.get(CPU))
    if limits.get(CPU) is None:
        return Fleet(name, "cpu-nodepool", np, "no cpu limit", "unbounded", math.inf,
                     [f"NodePool {name!r} has no spec.limits.cpu: Karpenter may launch without bound"])
    if cpu is None:
        return Fleet(name, "cpu-nodepool", np, f"cpu {limits.get(CPU)!r}", "?", None, ["cpu limit is not a number known at synth time"])
    cats: list[str] = []
    for req in as_list(tspec.get("requirements")):
        if not isinstance(req, dict) or req.get("operator") != "In":
            continue
        vals = [str(v) for v in as_list(req.get("values"))]
        if req.get("key") == "karpenter.k8s.aws/instance-category":
            cats += vals
        elif req.get("key") == "karpenter.k8s.aws/instance-family":
            cats += [m.group(0) for v in vals if (m := re.match(r"[a-z]+", v))]
        elif req.get("key") == "node.kubernetes.io/instance-type":
            cats += [m.group(0) for v in vals if (m := re.match(r"[a-z]+", v))]
    if not cats:
        return Fleet(name, "cpu-nodepool", np, f"{cpu:g} vCPUs", "?", None,
                     ["no instance-category/family/type requirement: the price per vCPU is unknown"])
    usd, ref = cpu_ceiling(prices, region, sorted(set(cats)))
    if usd is None:
        return Fleet(name, "cpu-nodepool", np, f"{cpu:g} vCPUs", "?", None, [ref])
    return Fleet(name, "cpu-nodepool", np, f"{cpu:g} vCPUs", f"{cpu:g} vCPUs x ${usd:.4f} ({ref})",
                 cpu * usd * HOURS_PER_MONTH)


def node_group_fleet(ng: Resource, region: str, prices: dict) -> Fleet:
    from tierwise.policies.cost import HOURS_PER_MONTH, quantity

    table = prices.get("ec2_on_demand", {}).get("regions", {}).get(region, {})
    sc = ng.body.get("scaling_config")
    sc = sc[0] if isinstance(sc, list) and sc else sc
    name = str(ng.body.get("node_group_name") or ng.name)
    max_size = quantity(sc.get("max_size")) if isinstance(sc, dict) else None
    types = [str(t) for t in as_list(ng.body.get("instance_types"))]
    if max_size is None:
        return Fleet(name, "node-group", ng, "max_size ?", "?", None, ["scaling_config.max_size is not a number known at synth time"])
    if not types:
        return Fleet(name, "node-group", ng, f"max {max_size:g}", "?", None,
                     ["no instance_types (the launch template decides): price unknown"])
    missing = [t for t in types if t not in table]
    if missing:
        return Fleet(name, "node-group", ng, f"max {max_size:g}", "?", None,
                     [f"{t}: no on-demand price for {region} in prices.json" for t in missing])
    worst = max(types, key=lambda t: table[t])
    return Fleet(name, "node-group", ng, f"max {max_size:g} nodes", f"{max_size:g} x {worst}",
                 max_size * table[worst] * HOURS_PER_MONTH)


def platform_cost(index: Index, region: str, prices: dict, gpu_pools: dict, teams: dict) -> PlatformCost:
    """`gpu_pools` and `teams`: the cost report's (cost.pools, cost.team_costs) for this index and prices."""
    from tierwise.policies.cost import is_gpu_nodepool

    fleets = []
    for p in sorted(gpu_pools.values(), key=lambda p: p.name):
        unknown = [n for n in p.notes if "reach unknown" in n or "no on-demand price" in n or "not in tierwise" in n]
        usd = math.inf if p.gpu_limit is None else (None if unknown or not p.worst_type else p.monthly_usd)
        cpu = f", {p.cpu_limit:g} vCPUs" if p.cpu_limit is not None else ""
        fleets.append(Fleet(p.name, "gpu-nodepool", p.resource,
                            f"{p.gpu_limit:g} GPUs{cpu}" if p.gpu_limit is not None else "no GPU limit",
                            f"{p.worst_instances} x {p.worst_type}" if p.worst_type else ("unbounded" if usd == math.inf else "?"),
                            usd, list(unknown) or (["no nvidia.com/gpu limit: unbounded"] if p.gpu_limit is None else [])))
    for np in index.k8s("NodePool", "karpenter.sh"):
        if not is_gpu_nodepool(np):
            fleets.append(cpu_nodepool_fleet(np, region, prices))
    fleets += [node_group_fleet(ng, region, prices) for ng in index.of_type("aws_eks_node_group")]
    bedrock = [t.bedrock_usd for t in teams.values()]
    budget, address, notes = platform_budget(index)
    return PlatformCost(budget, address, fleets, None if None in bedrock else sum(bedrock), notes)
