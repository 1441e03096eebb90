"""TW-COST-004: Kueue GPU quotas never exceed the NodePool limits behind their flavors."""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from tierwise.policies.cost import cost_report, flavor_pools, queue_gpu_quotas
from tierwise.policies.engine import FAIL, PASS, UNKNOWN, CheckMeta, Index, Result, result


class QuotaWithinPoolLimits:
    meta = CheckMeta(
        id="TW-COST-004",
        title="Kueue GPU quotas fit the NodePool limits behind their flavors",
        severity="HIGH",
        categories=("COST", "KUBERNETES"),
        resource_types=("kubernetes_manifest",),
        rationale="A quota above the pool's limit promises GPUs that can never launch: jobs are admitted and then "
                  "sit pending, and the cost model under-reads the quota.",
        fix="Keep the sum of teams[].gpu_quota[pool] (x units per GPU for MIG / time-slicing) at or below "
            "gpu_pools[].gpu_limit in environments/<env>.yaml.",
        protects="capacity truth: admitted work can actually be scheduled",
    )

    def run(self, index: Index) -> Iterable[Result]:
        m = self.meta
        pls = cost_report(index).pools  # the same pools TW-COST-002 and the report's cost table read
        fpools = flavor_pools(index)
        total: dict[str, float] = defaultdict(float)
        for q in index.k8s("ClusterQueue"):
            for flavor, res, nominal, borrow in queue_gpu_quotas(q):
                pool = pls.get(fpools.get(flavor, flavor))
                f = f"{q.k8s_name}/{flavor}/{res}"
                if pool is None:
                    yield result(m, FAIL, q, f"{q.address}: flavor {flavor!r} quotas {res} but no GPU NodePool backs it; "
                                             "point the flavor's nodeLabels at a gpu_pools entry", finding=f)
                    continue
                if nominal is None or pool.gpu_limit is None:
                    yield result(m, UNKNOWN, q, f"{q.address}: quota or pool limit for {flavor!r} is not a number", finding=f)
                    continue
                cap = pool.gpu_limit * pool.units_per_gpu
                reach = nominal + (borrow if borrow is not None else float("inf"))
                total[pool.name] += nominal
                if reach > cap:
                    what = "nominalQuota + borrowingLimit" if borrow else ("unbounded borrowing in cohort" if borrow is None else "nominalQuota")
                    yield result(m, FAIL, q, f"{q.address}: {res} {what} = {reach:g} on flavor {flavor!r} exceeds pool "
                                             f"{pool.name!r} limit {pool.gpu_limit:g} GPUs x {pool.units_per_gpu:g} units = {cap:g}; "
                                             "lower teams[].gpu_quota or set borrowingLimit", finding=f)
                else:
                    yield result(m, PASS, q, f"{q.address}: {res} {reach:g} <= {cap:g} on {flavor!r}", finding=f)
        for name, units in sorted(total.items()):
            pool = pls[name]
            cap = (pool.gpu_limit or 0) * pool.units_per_gpu
            if units > cap:
                yield result(m, FAIL, pool.resource, f"{pool.resource.address}: teams' nominal quotas add up to {units:g} units, "
                                                     f"above the pool's {pool.gpu_limit:g} GPUs x {pool.units_per_gpu:g} = {cap:g}; "
                                                     "lower teams[].gpu_quota or raise gpu_limit", finding=f"Pool::{name}")
            else:
                yield result(m, PASS, pool.resource, f"{pool.resource.address}: quotas {units:g} <= {cap:g} units",
                             finding=f"Pool::{name}")
