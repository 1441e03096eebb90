"""TW-COST-001: every GPU NodePool declares an `nvidia.com/gpu` limit."""

from __future__ import annotations

from typing import Iterable

from tierwise.policies.cost import GPU, is_gpu_nodepool, quantity
from tierwise.policies.engine import FAIL, PASS, UNKNOWN, CheckMeta, Index, Result, result


class GpuNodePoolLimit:
    meta = CheckMeta(
        id="TW-COST-001",
        title="Every GPU NodePool declares an nvidia.com/gpu limit",
        severity="CRITICAL",
        categories=("COST", "KUBERNETES"),
        resource_types=("kubernetes_manifest",),
        rationale="Without a GPU limit Karpenter launches GPU nodes for every pending pod: spend is unbounded.",
        fix="Set gpu_pools[].gpu_limit in environments/<env>.yaml (rendered as spec.limits[\"nvidia.com/gpu\"]).",
        protects="spend: a hard ceiling on GPUs each pool can launch",
        unsuppressible=True,
    )

    def run(self, index: Index) -> Iterable[Result]:
        m = self.meta
        for np in index.k8s("NodePool", "karpenter.sh"):
            if not is_gpu_nodepool(np):
                continue
            spec = np.manifest.get("spec") if isinstance(np.manifest.get("spec"), dict) else {}
            limits = spec.get("limits") if isinstance(spec.get("limits"), dict) else {}
            raw = limits.get(GPU)
            q = quantity(raw)
            if raw is None:
                yield result(m, FAIL, np, f"{np.address}: GPU NodePool {np.k8s_name!r} has no spec.limits[{GPU!r}] "
                                          f"(limits: {limits or 'none'}); set gpu_pools[].gpu_limit")
            elif q is None:
                yield result(m, UNKNOWN, np, f"{np.address}: GPU limit {raw!r} is not a number known at synth time")
            elif q <= 0:
                yield result(m, FAIL, np, f"{np.address}: GPU limit {raw!r} must be a positive number of GPUs; set gpu_pools[].gpu_limit >= 1")
            else:
                yield result(m, PASS, np, f"{np.address}: NodePool {np.k8s_name!r} limited to {q:g} GPUs")
