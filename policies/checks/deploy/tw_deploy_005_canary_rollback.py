"""TW-DEPLOY-005: every model canary on the inference Gateway has its rollback target: the stable InferencePool is a
backend of the same HTTPRoute with traffic, and that pool is deployed."""

from __future__ import annotations

from typing import Iterable

from tierwise.policies.checks.deploy.deploy_common import releases
from tierwise.policies.engine import FAIL, PASS, CheckMeta, Index, Result, as_list, result

CANARY_ANNOTATION = "tierwise.io/canary"
ROLLBACK_ANNOTATION = "tierwise.io/rollback-target"
POOL = ("inference.networking.k8s.io", "InferencePool")


class CanaryHasRollbackTarget:
    meta = CheckMeta(
        id="TW-DEPLOY-005",
        title="Every model canary keeps its rollback target (the stable InferencePool) in its HTTPRoute",
        severity="HIGH",
        categories=("DEPLOY", "ROLLOUT"),
        resource_types=("kubernetes_manifest",),
        rationale="A canary without its stable version beside it is a cut-over, not a canary: there is nothing to shift "
                  "traffic back to when it misbehaves, and a route to a pool nobody deploys answers 500.",
        fix="Keep the stable model in the catalog and declare the new version with `canary: {of: <stable>, weight: N}`.",
        protects="safe model rollouts: every canary can be rolled back by weight",
    )

    def run(self, index: Index) -> Iterable[Result]:
        m = self.meta
        deployed = {rel.name for rel in releases(index) if rel.chart == "inferencepool"}
        for route in index.k8s("HTTPRoute", "gateway.networking.k8s.io"):
            backends = [b for rule in as_list((route.manifest.get("spec") or {}).get("rules"))
                        for b in as_list((rule or {}).get("backendRefs")) if isinstance(b, dict)
                        and (b.get("group"), b.get("kind")) == POOL]
            if not backends:
                continue
            meta = route.manifest.get("metadata") or {}
            ann = meta.get("annotations") or {}
            weights = {str(b.get("name")): int(b.get("weight", 1)) for b in backends}
            problems = [f"backend pool {n!r} is not deployed (no inferencepool release)" for n in weights if n not in deployed]
            canary, rollback = ann.get(CANARY_ANNOTATION), ann.get(ROLLBACK_ANNOTATION)
            if len(weights) > 1 and not canary:
                problems.append(f"splits traffic over {sorted(weights)} without naming the canary and its rollback target")
            if canary:
                if not rollback:
                    problems.append(f"canary {canary!r} has no {ROLLBACK_ANNOTATION} annotation")
                elif weights.get(rollback, 0) <= 0:
                    problems.append(f"canary {canary!r}: rollback target {rollback!r} is not a backend with traffic "
                                    f"(backends {weights})")
            if problems:
                for p in problems:
                    yield result(m, FAIL, route, f"{route.address}: HTTPRoute {route.k8s_name!r} {p}; keep the stable "
                                                 "model in the catalog and declare the new one with canary.of",
                                 finding=p[:60])
            else:
                yield result(m, PASS, route, f"{route.address}: HTTPRoute {route.k8s_name!r} -> {weights}"
                                             + (f" (canary {canary}, rollback {rollback})" if canary else ""))
