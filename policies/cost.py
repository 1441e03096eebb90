"""Worst-case monthly spend, computed from the synthesized NodePools and Kueue ClusterQueues.

Per pool: Karpenter will not launch a node that would take the pool past `spec.limits` (`nvidia.com/gpu`,
`cpu`), so the most instances of type T it can hold is min(gpu_limit // gpus(T), cpu_limit // vcpus(T)).
The pool's worst case is the most expensive such fleet, at the on-demand price (spot never costs more),
running 730 h a month.

Per team: the ClusterQueue's quota on a flavor (in the pool's units: GPUs, MIG slices or time-slice
replicas; `tierwise.io/gpu-units-per-gpu` converts) plus its borrowing limit gives the GPUs the team can
hold; its worst case is the most expensive set of whole nodes that covers them (a team holding 4 GPUs may
pin an 8-GPU node), capped by the pool's own reach. Plus the team's Bedrock token budget × model price.
Instance sizes come from tierwise.config.hardware (facts), prices from policies/prices/prices.json.

Platform: the team view attributes spend; it does not bound it. The platform's worst case at its fences (every
NodePool and node group at its limit) against the platform budget is policies/platform_cost.py (TW-COST-005).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tierwise.config.bedrock_catalog import split_profile
from tierwise.policies.engine import Index, Resource, as_list
from tierwise.policies.platform_cost import SCOPE_TAG, PlatformCost, platform_cost

HOURS_PER_MONTH = 730
PRICES_FILE = Path(__file__).parent / "prices" / "prices.json"
GPU = "nvidia.com/gpu"
UNITS_LABEL = "tierwise.io/gpu-units-per-gpu"
POOL_LABEL = "tierwise.io/pool"
TEAM_LABEL = "tierwise.io/team"
CC_LABEL = "tierwise.io/cost-center"
GPU_RESOURCES = (GPU, "tierwise.io/mig-slices")


def load_prices(path: Path | None = None) -> dict:
    return json.loads((path or PRICES_FILE).read_text())


def quantity(v: Any) -> float | None:
    """A Kubernetes quantity as a number (`16`, "16", "2k", "500m"); None when unknown."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if not isinstance(v, str) or "${" in v:
        return None
    s = v.strip()
    mult = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}
    for suf in sorted(mult, key=len, reverse=True):
        if s.endswith(suf):
            try:
                return float(s[: -len(suf)]) * mult[suf]
            except ValueError:
                return None
    try:
        return float(s)
    except ValueError:
        return None


def is_gpu_nodepool(np: Resource) -> bool:
    spec = np.manifest.get("spec", {}) if isinstance(np.manifest.get("spec"), dict) else {}
    tmpl = spec.get("template", {}) if isinstance(spec.get("template"), dict) else {}
    tspec = tmpl.get("spec", {}) if isinstance(tmpl.get("spec"), dict) else {}
    labels = (tmpl.get("metadata") or {}).get("labels", {}) if isinstance(tmpl.get("metadata"), dict) else {}
    if GPU in (spec.get("limits") or {}) or UNITS_LABEL in (labels or {}):
        return True
    for t in as_list(tspec.get("taints")):
        if isinstance(t, dict) and t.get("key") == GPU:
            return True
    for req in as_list(tspec.get("requirements")):
        if not isinstance(req, dict):
            continue
        if req.get("key") == "karpenter.k8s.aws/instance-gpu-count" and req.get("operator") in ("Gt", "Exists", "In"):
            return True
        if req.get("key") in ("karpenter.k8s.aws/instance-family", "node.kubernetes.io/instance-type") and req.get("operator") == "In":
            from tierwise.config.hardware import FAMILIES

            if any(str(v).split(".")[0] in FAMILIES for v in as_list(req.get("values"))):
                return True
    return False


@dataclass
class Pool:
    name: str
    resource: Resource
    gpu_limit: float | None
    cpu_limit: float | None
    units_per_gpu: float
    families: list[str]
    instance_types: list[str]  # explicit In on instance-type, else all sizes of the families
    capacity_types: list[str]
    # computed
    worst_type: str = ""
    worst_instances: int = 0
    hourly_usd: float = 0.0
    usd_per_gpu_hour: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def monthly_usd(self) -> float:
        return self.hourly_usd * HOURS_PER_MONTH


def _spec(np: Resource) -> tuple[dict, dict, dict]:
    spec = np.manifest.get("spec") if isinstance(np.manifest.get("spec"), dict) else {}
    tmpl = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    tspec = tmpl.get("spec") if isinstance(tmpl.get("spec"), dict) else {}
    labels = (tmpl.get("metadata") or {}).get("labels") if isinstance(tmpl.get("metadata"), dict) else {}
    return spec, tspec, labels if isinstance(labels, dict) else {}


def pools(index: Index, region: str, prices: dict) -> dict[str, Pool]:
    from tierwise.config.hardware import FAMILIES

    table = prices.get("ec2_on_demand", {}).get("regions", {}).get(region, {})
    out: dict[str, Pool] = {}
    for np in index.k8s("NodePool", "karpenter.sh"):
        if not is_gpu_nodepool(np):
            continue
        spec, tspec, labels = _spec(np)
        limits = spec.get("limits") if isinstance(spec.get("limits"), dict) else {}
        fams, types, caps = [], [], []
        for req in as_list(tspec.get("requirements")):
            if isinstance(req, dict) and req.get("operator") == "In":
                vals = [str(v) for v in as_list(req.get("values"))]
                if req.get("key") == "karpenter.k8s.aws/instance-family":
                    fams = vals
                elif req.get("key") == "node.kubernetes.io/instance-type":
                    types = vals
                elif req.get("key") == "karpenter.sh/capacity-type":
                    caps = vals
        name = np.labels.get(POOL_LABEL) or labels.get(POOL_LABEL) or np.k8s_name
        p = Pool(name, np, quantity(limits.get(GPU)), quantity(limits.get("cpu")), quantity(labels.get(UNITS_LABEL, "1")) or 1.0,
                 fams, types, caps)
        candidates = types or [s.name for f in fams if f in FAMILIES for s in FAMILIES[f].sizes]
        if not candidates:
            p.notes.append("no instance family or type requirement: reach unknown")
        sizes = {s.name: s for f in FAMILIES.values() for s in f.sizes}
        best = (0.0, "", 0, 0.0)
        for t in candidates:
            size = sizes.get(t)
            if size is None or size.gpus == 0:
                p.notes.append(f"{t}: not in tierwise.config.hardware")
                continue
            if t not in table:
                p.notes.append(f"{t}: no on-demand price for {region} in prices.json")
                continue
            if p.gpu_limit is None:
                continue
            n = int(p.gpu_limit // size.gpus)
            if p.cpu_limit is not None:
                n = min(n, int(p.cpu_limit // size.vcpus))
            cost = n * table[t]
            if cost > best[0] or not best[1]:
                best = (cost, t, n, table[t] / size.gpus)
        p.hourly_usd, p.worst_type, p.worst_instances = best[0], best[1], best[2]
        p.usd_per_gpu_hour = max((table[t] / sizes[t].gpus for t in candidates if t in table and t in sizes and sizes[t].gpus),
                                 default=0.0)
        out[name] = p
    return out


@dataclass
class TeamCost:
    team: str
    cost_center: str = ""
    budget_usd: float | None = None
    budget_address: str = ""
    queue: Resource | None = None
    gpu_by_pool: dict[str, float] = field(default_factory=dict)  # physical GPUs reachable
    gpu_usd_by_pool: dict[str, float] = field(default_factory=dict)
    bedrock_usd: float | None = None  # None: not known
    bedrock_lines: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def gpu_usd(self) -> float:
        return sum(self.gpu_usd_by_pool.values())

    @property
    def total_usd(self) -> float:
        return self.gpu_usd + (self.bedrock_usd or 0.0)


def flavor_pools(index: Index) -> dict[str, str]:
    """Kueue ResourceFlavor name -> pool name (its nodeLabels' tierwise.io/pool, else its own label)."""
    out = {}
    for f in index.k8s("ResourceFlavor"):
        spec = f.manifest.get("spec") if isinstance(f.manifest.get("spec"), dict) else {}
        nl = spec.get("nodeLabels") if isinstance(spec.get("nodeLabels"), dict) else {}
        out[f.k8s_name] = str(nl.get(POOL_LABEL) or f.labels.get(POOL_LABEL) or f.k8s_name)
    return out


def queue_gpu_quotas(q: Resource) -> list[tuple[str, str, float | None, float | None]]:
    """(flavor, resource, nominalQuota, borrowingLimit) for every GPU resource of a ClusterQueue."""
    out = []
    spec = q.manifest.get("spec") if isinstance(q.manifest.get("spec"), dict) else {}
    for rg in as_list(spec.get("resourceGroups")):
        for fl in as_list(rg.get("flavors") if isinstance(rg, dict) else None):
            if not isinstance(fl, dict):
                continue
            for res in as_list(fl.get("resources")):
                if isinstance(res, dict) and res.get("name") in GPU_RESOURCES:
                    bl = res.get("borrowingLimit")
                    out.append((str(fl.get("name")), str(res.get("name")), quantity(res.get("nominalQuota")),
                                quantity(bl) if bl is not None else (None if spec.get("cohortName") else 0.0)))
    return out


def teams_from_index(index: Index) -> dict[str, TeamCost]:
    teams: dict[str, TeamCost] = {}
    for ns in index.k8s("Namespace"):
        t = ns.labels.get(TEAM_LABEL)
        if t and t != "shared":
            tc = teams.setdefault(t, TeamCost(t))
            tc.cost_center = tc.cost_center or str(ns.labels.get(CC_LABEL, ""))
    for q in index.k8s("ClusterQueue"):
        t = q.labels.get(TEAM_LABEL)
        if t and t != "shared":
            teams.setdefault(t, TeamCost(t)).queue = q
    for t in as_list(index.meta.get("teams")):
        if isinstance(t, dict) and t.get("name"):
            tc = teams.setdefault(str(t["name"]), TeamCost(str(t["name"])))
            tc.cost_center = tc.cost_center or str(t.get("cost_center", ""))
    for b in index.of_type("aws_budgets_budget"):
        if isinstance(b.body.get("tags"), dict) and b.body["tags"].get(SCOPE_TAG) == "platform":
            continue  # the platform budget (TW-COST-005), never a team's
        ccs = []
        for cf in as_list(b.body.get("cost_filter")):
            if isinstance(cf, dict) and cf.get("name") == "TagKeyValue":
                ccs += [str(v).split("$", 1)[1] for v in as_list(cf.get("values")) if str(v).startswith("user:cost-center$")]
        own = b.body.get("tags") if isinstance(b.body.get("tags"), dict) else {}
        for tc in teams.values():
            if (tc.cost_center and tc.cost_center in ccs) or (not ccs and own.get("team") == tc.team):
                if b.body.get("time_unit", "MONTHLY") == "MONTHLY":
                    tc.budget_usd = quantity(b.body.get("limit_amount"))
                    tc.budget_address = b.address
    return teams


def team_costs(index: Index, region: str, prices: dict, bedrock_budgets: dict[str, list[dict]] | None = None,
               pls: dict[str, Pool] | None = None) -> dict[str, TeamCost]:
    """Worst case per team. `bedrock_budgets`: team -> [{model_id, monthly_input_mtok, monthly_output_mtok}]
    (from the environment file for `tierwise cost`, from tierwise.json `teams` for the policy gate).
    `pls`: the pools already computed for this index, region and prices (computed here when None)."""
    from tierwise.config.hardware import FAMILIES

    pls = pls if pls is not None else pools(index, region, prices)
    fpools = flavor_pools(index)
    table = prices.get("ec2_on_demand", {}).get("regions", {}).get(region, {})
    sizes = {s.name: s for f in FAMILIES.values() for s in f.sizes}
    teams = teams_from_index(index)
    if bedrock_budgets is None:
        bedrock_budgets = {str(t["name"]): as_list(t.get("bedrock")) for t in as_list(index.meta.get("teams"))
                           if isinstance(t, dict) and "bedrock" in t and t.get("name")} or None
    for tc in teams.values():
        if tc.queue is not None:
            for flavor, _res, nominal, borrow in queue_gpu_quotas(tc.queue):
                pool = pls.get(fpools.get(flavor, flavor))
                if pool is None or nominal is None:
                    tc.notes.append(f"flavor {flavor}: no GPU NodePool or unknown quota")
                    continue
                units = nominal + (borrow if borrow is not None else math.inf)
                gpus = min(units / pool.units_per_gpu, pool.gpu_limit if pool.gpu_limit is not None else math.inf)
                tc.gpu_by_pool[pool.name] = tc.gpu_by_pool.get(pool.name, 0.0) + gpus
        for pname, gpus in tc.gpu_by_pool.items():
            pool = pls[pname]
            cands = pool.instance_types or [s.name for f in pool.families if f in FAMILIES for s in FAMILIES[f].sizes]
            worst = 0.0
            for t in cands:
                if t not in table or t not in sizes or not sizes[t].gpus:
                    continue
                n = math.ceil(gpus / sizes[t].gpus - 1e-9)
                cap = int((pool.gpu_limit or 0) // sizes[t].gpus)
                if pool.cpu_limit is not None:
                    cap = min(cap, int(pool.cpu_limit // sizes[t].vcpus))
                worst = max(worst, min(n, cap) * table[t])
            tc.gpu_usd_by_pool[pname] = worst * HOURS_PER_MONTH
        if bedrock_budgets is not None:
            tc.bedrock_usd = 0.0
            bp = prices.get("bedrock", {}).get("models", {})
            for b in bedrock_budgets.get(tc.team, []):
                mid = str(b.get("model_id"))
                p = bp.get(mid) or bp.get(split_profile(mid)[1])  # us.anthropic... is priced as anthropic...
                if p is None:
                    tc.notes.append(f"bedrock model {mid}: no price in prices.json")
                    tc.bedrock_usd = None
                    break
                usd = float(b.get("monthly_input_mtok", 0)) * p["input"] + float(b.get("monthly_output_mtok", 0)) * p["output"]
                tc.bedrock_usd += usd
                tc.bedrock_lines.append(f"{mid}: {b.get('monthly_input_mtok', 0)} MTok in x ${p['input']} + "
                                        f"{b.get('monthly_output_mtok', 0)} MTok out x ${p['output']} = ${usd:,.0f}")
    return teams


def region_of(index: Index) -> str:
    for stack in index.stacks:
        for b in index.provider_blocks(stack):
            if isinstance(b.get("region"), str) and not b.get("alias"):
                return b["region"]
    return str(index.meta.get("region", "us-east-1"))


@dataclass
class CostReport:
    environment: str
    region: str
    pools: dict[str, Pool]
    teams: dict[str, TeamCost]
    prices_version: str
    #: The limit-bound worst case of the whole platform against its budget (policies/platform_cost.py).
    platform: PlatformCost | None = None

    def as_dict(self) -> dict:
        return {
            "environment": self.environment, "region": self.region, "hours_per_month": HOURS_PER_MONTH,
            "prices_version": self.prices_version,
            "pools": {n: {"gpu_limit": p.gpu_limit, "cpu_limit": p.cpu_limit, "worst_instance_type": p.worst_type,
                          "worst_instances": p.worst_instances, "hourly_usd": round(p.hourly_usd, 4),
                          "monthly_usd": round(p.monthly_usd, 2), "capacity_types": p.capacity_types, "notes": p.notes}
                      for n, p in sorted(self.pools.items())},
            "teams": {n: {"cost_center": t.cost_center, "budget_usd": t.budget_usd,
                          "gpu_by_pool": {k: round(v, 3) for k, v in sorted(t.gpu_by_pool.items())},
                          "gpu_usd_by_pool": {k: round(v, 2) for k, v in sorted(t.gpu_usd_by_pool.items())},
                          "gpu_usd": round(t.gpu_usd, 2), "bedrock_usd": None if t.bedrock_usd is None else round(t.bedrock_usd, 2),
                          "total_usd": round(t.total_usd, 2), "notes": t.notes}
                      for n, t in sorted(self.teams.items())},
            "total_pools_usd": round(sum(p.monthly_usd for p in self.pools.values()), 2),
            "platform": self.platform.as_dict() if self.platform else None,
        }


def cost_report(index: Index, prices: dict | None = None, bedrock_budgets: dict | None = None) -> CostReport:
    """Pools and team worst cases. The default report (shipped prices, Bedrock budgets from tierwise.json) is
    computed once per Index and shared by TW-COST-002, TW-COST-004 and `tierwise policy`'s cost table."""
    default = prices is None and bedrock_budgets is None
    if default and "cost_report" in index.memo:
        return index.memo["cost_report"]
    prices = prices or load_prices()
    region = region_of(index)
    pls = pools(index, region, prices)
    teams = team_costs(index, region, prices, bedrock_budgets, pls)
    rep = CostReport(str(index.meta.get("environment", index.root.name)), region, pls, teams, str(prices.get("version", "")),
                     platform_cost(index, region, prices, pls, teams))
    if default:
        index.memo["cost_report"] = rep
    return rep
