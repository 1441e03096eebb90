"""TW-DEPLOY-001: every MIG layout a GPU NodePool asks for exists and fits its GPU's compute and memory slices."""

from __future__ import annotations

import json
from typing import Iterable

from tierwise.policies.checks.deploy.deploy_common import gpu_nodepools, pool_gpus, pool_labels
from tierwise.policies.engine import FAIL, PASS, CheckMeta, Index, Result, result

MIG_CONFIG_LABEL = "nvidia.com/mig.config"


def mig_layouts(index: Index) -> dict[str, dict[str, int]]:
    """layout name -> {profile: instances per GPU} from the MIG manager's ConfigMap(s) (`config.yaml`)."""
    out: dict[str, dict[str, int]] = {}
    for cm in index.k8s("ConfigMap"):
        raw = (cm.manifest.get("data") or {}).get("config.yaml")
        if not isinstance(raw, str) or "mig-configs" not in raw:
            continue
        for name, entries in (json.loads(raw).get("mig-configs") or {}).items():
            layout: dict[str, int] = {}
            for e in entries or []:
                if e.get("mig-enabled"):
                    for p, n in (e.get("mig-devices") or {}).items():
                        layout[p] = layout.get(p, 0) + int(n)
            out[name] = layout
    return out


class MigLayoutsFit:
    meta = CheckMeta(
        id="TW-DEPLOY-001",
        title="MIG layouts exist and fit the GPU's compute and memory slices",
        severity="HIGH",
        categories=("DEPLOY", "GPU"),
        resource_types=("kubernetes_manifest",),
        rationale="The MIG manager cannot apply a layout that needs more memory slices than the GPU has (e.g. "
                  "2x 3g.40gb + 1g.10gb on A100-80GB needs 9 of 8): the node never offers its slices.",
        fix="Change gpu_pools[].sharing.layout so compute slices <= 7 and memory slices <= 8 per GPU.",
        protects="GPU capacity: MIG pools actually come up partitioned",
        unsuppressible=True,
    )

    def run(self, index: Index) -> Iterable[Result]:
        m = self.meta
        layouts = mig_layouts(index)
        for np in gpu_nodepools(index):
            name = pool_labels(np).get(MIG_CONFIG_LABEL)
            if name is None:
                continue
            if name not in layouts:
                yield result(m, FAIL, np, f"{np.address}: NodePool {np.k8s_name!r} asks for MIG layout {name!r}, which no "
                                          f"MIG manager ConfigMap defines (defined: {sorted(layouts)}); add the layout to the MIG manager config")
                continue
            gpus = pool_gpus(np)
            problems = [p for g in gpus for p in g.mig_layout_problems(layouts[name])]
            if not gpus:
                problems = ["no known GPU instance family in its requirements"]
            if problems:
                for p in problems:
                    yield result(m, FAIL, np, f"{np.address}: NodePool {np.k8s_name!r}: {p}; set gpu_pools[].sharing.layout "
                                              "to at most 7 compute and 8 memory slices per GPU", finding=f"{name}::{p[:60]}")
            else:
                yield result(m, PASS, np, f"{np.address}: layout {name!r} fits {', '.join(g.name for g in gpus)}")
