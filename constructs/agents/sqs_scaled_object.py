"""`SqsScaledObject`: a KEDA ScaledObject that scales an agent on its SQS queue depth."""

from __future__ import annotations

from dataclasses import dataclass, field

from constructs import Construct

from ..kubernetes import KubernetesObject


@dataclass(frozen=True)
class SqsScaledObjectProps:
    name: str
    namespace: str
    queue_url: str
    region: str
    min_replicas: int
    max_replicas: int
    #: Messages (visible + in flight) per replica.
    messages_per_replica: int = 5
    #: Visible messages that wake the agent from zero replicas.
    activation_messages: int = 0
    cooldown_s: int = 300
    polling_s: int = 15
    labels: dict[str, str] = field(default_factory=dict)


class SqsScaledObject(KubernetesObject):
    """Creates one `keda.sh/v1alpha1` ScaledObject with an `aws-sqs-queue` trigger. KEDA reads the queue depth
    with the operator's own EKS Pod Identity (`identityOwner: operator`; `KedaQueueReader` grants it
    `sqs:GetQueueAttributes` on exactly the agent queues): the agent's role is never shared with KEDA."""

    def __init__(self, scope: Construct, id: str, *, props: SqsScaledObjectProps) -> None:
        p = props
        if not 0 <= p.min_replicas <= p.max_replicas or p.max_replicas < 1:
            raise ValueError(f"SqsScaledObject {p.name}: need 0 <= min_replicas <= max_replicas and max >= 1, "
                             f"got {p.min_replicas}/{p.max_replicas}")
        if p.messages_per_replica < 1:
            raise ValueError(f"SqsScaledObject {p.name}: messages_per_replica must be >= 1, got {p.messages_per_replica}")
        super().__init__(scope, id, body={
            "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": p.name, "namespace": p.namespace, "labels": dict(p.labels)},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": p.name},
                "minReplicaCount": p.min_replicas, "maxReplicaCount": p.max_replicas,
                "pollingInterval": p.polling_s, "cooldownPeriod": p.cooldown_s,
                "triggers": [{"type": "aws-sqs-queue", "name": "queue-depth", "metadata": {
                    "queueURL": p.queue_url, "awsRegion": p.region, "queueLength": str(p.messages_per_replica),
                    "activationQueueLength": str(p.activation_messages), "identityOwner": "operator"}}],
            }})
