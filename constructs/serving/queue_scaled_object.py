"""`QueueScaledObject`: a KEDA ScaledObject that scales a workload on queue length, not CPU."""

from __future__ import annotations

from dataclasses import dataclass, field

from constructs import Construct

from ..kubernetes import KubernetesObject


@dataclass(frozen=True)
class PrometheusQueue:
    """One Prometheus query whose value is a queue length; KEDA targets `threshold` per replica."""

    name: str
    query: str
    threshold: int
    #: Above this the workload is woken from zero replicas.
    activation_threshold: int = 0


@dataclass(frozen=True)
class QueueScaledObjectProps:
    name: str
    namespace: str
    target_kind: str
    target_api_version: str
    min_replicas: int
    max_replicas: int
    prometheus_url: str
    queues: list[PrometheusQueue]
    cooldown_s: int = 900
    polling_s: int = 15
    #: Also scale on average CPU utilisation (percent of request); queue signals only when omitted.
    cpu_percent: int | None = None
    labels: dict[str, str] = field(default_factory=dict)


class QueueScaledObject(KubernetesObject):
    """Creates one `keda.sh/v1alpha1` ScaledObject with a Prometheus trigger per queue (KEDA owns the HPA
    it generates; the target's manifest leaves `replicas` unset so Terraform and KEDA never fight)."""

    def __init__(self, scope: Construct, id: str, *, props: QueueScaledObjectProps) -> None:
        p = props
        if not 0 <= p.min_replicas <= p.max_replicas or p.max_replicas < 1:
            raise ValueError(f"QueueScaledObject {p.name}: need 0 <= min_replicas <= max_replicas and max >= 1, "
                             f"got {p.min_replicas}/{p.max_replicas}")
        if not p.queues:
            raise ValueError(f"QueueScaledObject {p.name}: at least one queue signal is required")
        if p.min_replicas == 0 and p.cpu_percent is not None:
            raise ValueError(f"QueueScaledObject {p.name}: a CPU trigger cannot wake a workload from zero replicas")
        triggers = [{"type": "prometheus", "name": q.name, "metricType": "AverageValue", "metadata": {
            "serverAddress": p.prometheus_url, "query": q.query, "threshold": str(q.threshold),
            "activationThreshold": str(q.activation_threshold), "ignoreNullValues": "true"}} for q in p.queues]
        if p.cpu_percent is not None:
            triggers.append({"type": "cpu", "name": "cpu", "metricType": "Utilization", "metadata": {"value": str(p.cpu_percent)}})
        super().__init__(scope, id, body={
            "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": p.name, "namespace": p.namespace, "labels": dict(p.labels)},
            "spec": {
                "scaleTargetRef": {"apiVersion": p.target_api_version, "kind": p.target_kind, "name": p.name},
                "minReplicaCount": p.min_replicas, "maxReplicaCount": p.max_replicas,
                "pollingInterval": p.polling_s, "cooldownPeriod": p.cooldown_s,
                "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
                    "scaleUp": {"stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}]},
                    "scaleDown": {"stabilizationWindowSeconds": 300, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}]},
                }}},
                "triggers": triggers,
            }})
