"""`KedaQueueReader`: the KEDA operator's EKS Pod Identity, allowed to read the depth of agent queues only."""

from __future__ import annotations

from dataclasses import dataclass, field

from constructs import Construct

from ..iam import Statement
from ..identity.workload_identity import WorkloadIdentity, WorkloadIdentityProps

KEDA_NAMESPACE = "keda"
KEDA_SERVICE_ACCOUNT = "keda-operator"


@dataclass(frozen=True)
class KedaQueueReaderProps:
    role_name: str
    account_id: str
    cluster_name: str
    cluster_arn: str
    #: ARNs of the queues KEDA scales on (each agent's work queue).
    queue_arns: list[str] = field(default_factory=list)
    namespace: str = KEDA_NAMESPACE
    service_account: str = KEDA_SERVICE_ACCOUNT


class KedaQueueReader(Construct):
    """Creates a `WorkloadIdentity` for the KEDA operator's service account with one statement:
    `sqs:GetQueueAttributes` on exactly the listed queues (no receive, no delete, no decrypt)."""

    def __init__(self, scope: Construct, id: str, *, props: KedaQueueReaderProps) -> None:
        super().__init__(scope, id)
        p = props
        if not p.queue_arns:
            raise ValueError("KedaQueueReader: give at least one queue ARN (a reader of every queue is never created)")
        self.identity = WorkloadIdentity(self, "identity", props=WorkloadIdentityProps(
            name=p.role_name, account_id=p.account_id, cluster_name=p.cluster_name, cluster_arn=p.cluster_arn,
            namespace=p.namespace, service_account=p.service_account,
            statements=[Statement(["sqs:GetQueueAttributes"], list(p.queue_arns), sid="ReadAgentQueueDepth")],
            tags={"tierwise.io/workload": "keda-operator"}))
