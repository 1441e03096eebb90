"""`TeamNamespace`: a namespace owned by one team, closed by default.

Default-deny ingress and egress, plus the one egress every pod needs (DNS to kube-dns). Anything
else a workload needs is a NetworkPolicy the serving or agent stacks add on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct

from ..kubernetes import KubernetesObject

TEAM_LABEL = "tierwise.io/team"


@dataclass(frozen=True)
class TeamNamespaceProps:
    name: str
    team: str
    cost_center: str
    #: Pod Security Standard enforced on the namespace.
    pod_security: str = "baseline"


class TeamNamespace(Construct):
    """Creates a Namespace, a default-deny NetworkPolicy (Ingress+Egress) and an allow-DNS NetworkPolicy."""

    def __init__(self, scope: Construct, id: str, *, props: TeamNamespaceProps) -> None:
        super().__init__(scope, id)
        self.namespace = KubernetesObject(self, "namespace", body={
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": props.name, "labels": {
                TEAM_LABEL: props.team, "tierwise.io/cost-center": props.cost_center,
                "pod-security.kubernetes.io/enforce": props.pod_security,
                "pod-security.kubernetes.io/warn": "restricted"}},
        })
        deny = KubernetesObject(self, "default-deny", body={
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": props.name},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        })
        dns = KubernetesObject(self, "allow-dns", body={
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "allow-dns", "namespace": props.name},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{
                "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]},
        })
        for obj in (deny, dns):
            obj.manifest.node.add_dependency(self.namespace.manifest)

    @property
    def namespace_name(self) -> str:
        return self.namespace.name
