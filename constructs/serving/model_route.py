"""`ModelRoute`: the HTTPRoute that sends one model name to its InferencePool(s) through the inference Gateway.

Requests carry the model in the `X-Gateway-Model-Name` header (the router sets it; the Inference Extension's
body-based router sets the same header for clients that do not). With a model-version canary the route splits the
name over the stable pool and the canary pool by backend weight; the stable pool is the canary's rollback target
(annotated, and checked by the policy gate: TW-DEPLOY-005).
"""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct

from ..kubernetes import KubernetesObject

MODEL_HEADER = "X-Gateway-Model-Name"
CANARY_ANNOTATION = "tierwise.io/canary"
ROLLBACK_ANNOTATION = "tierwise.io/rollback-target"


@dataclass(frozen=True)
class PoolWeight:
    pool: str
    weight: int


@dataclass(frozen=True)
class ModelRouteProps:
    model: str
    namespace: str
    gateway: str
    stable: PoolWeight
    canary: PoolWeight | None = None
    timeout_s: int = 300


class ModelRoute(KubernetesObject):
    """Creates one `gateway.networking.k8s.io/v1` HTTPRoute."""

    def __init__(self, scope: Construct, id: str, *, props: ModelRouteProps) -> None:
        p = props
        backends = [p.stable] + ([p.canary] if p.canary else [])
        if sum(b.weight for b in backends) != 100 or any(b.weight < 0 for b in backends):
            raise ValueError(f"ModelRoute {p.model}: backend weights must be >= 0 and add up to 100, got {backends}")
        annotations = {}
        if p.canary:
            annotations = {CANARY_ANNOTATION: p.canary.pool, ROLLBACK_ANNOTATION: p.stable.pool}
        super().__init__(scope, id, body={
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": p.model, "namespace": p.namespace, **({"annotations": annotations} if annotations else {})},
            "spec": {
                "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": p.gateway}],
                "rules": [{
                    # the header alone: the router's OpenAI calls (/v1/...) and its readiness probe (/health) both match
                    "matches": [{"headers": [{"type": "Exact", "name": MODEL_HEADER, "value": p.model}]}],
                    "backendRefs": [{"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": b.pool,
                                     "weight": b.weight} for b in backends],
                    "timeouts": {"request": f"{p.timeout_s}s"},
                }],
            }})
