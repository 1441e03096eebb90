"""`NetworkPolicy`: one allow-list NetworkPolicy, plus peer/port helpers, on top of a namespace's default deny.

Policies are additive in Kubernetes: a namespace that denies everything by default (`NamespaceIsolation`)
and then lists each flow once per side (egress at the client, ingress at the server) allows exactly
those flows. `tests/serving` derives the allowed graph from the synthesized objects and compares it
with the intended one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from constructs import Construct

from ..kubernetes import KubernetesObject

NS_NAME_LABEL = "kubernetes.io/metadata.name"


def pods(match_labels: dict[str, str], namespace: str | None = None) -> dict[str, Any]:
    """Pods with these labels; in the policy's own namespace unless `namespace` is given."""
    peer: dict[str, Any] = {"podSelector": {"matchLabels": dict(match_labels)}}
    if namespace is not None:
        peer["namespaceSelector"] = {"matchLabels": {NS_NAME_LABEL: namespace}}
    return peer


def namespaces(names: list[str]) -> dict[str, Any]:
    """Every pod in the named namespaces."""
    return {"namespaceSelector": {"matchExpressions": [{"key": NS_NAME_LABEL, "operator": "In", "values": sorted(names)}]}}


def cidr(block: str) -> dict[str, Any]:
    return {"ipBlock": {"cidr": block}}


def tcp(*numbers: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": n} for n in numbers]


@dataclass(frozen=True)
class NetworkPolicyProps:
    name: str
    namespace: str
    #: Labels of the pods this policy applies to.
    pod_selector: dict[str, str]
    #: Allowed inbound rules (`from` + `ports`); the Ingress type is declared only when rules are given.
    ingress: list[dict[str, Any]] = field(default_factory=list)
    #: Allowed outbound rules (`to` + `ports`); the Egress type is declared only when rules are given.
    egress: list[dict[str, Any]] = field(default_factory=list)
    #: Apply to every pod of the namespace (e.g. clients of the router). Off: `pod_selector` is required.
    select_all_pods: bool = False


class NetworkPolicy(KubernetesObject):
    """Creates one `networking.k8s.io/v1` NetworkPolicy."""

    def __init__(self, scope: Construct, id: str, *, props: NetworkPolicyProps) -> None:
        if not props.ingress and not props.egress:
            raise ValueError(f"NetworkPolicy {props.name}: give ingress or egress rules (default deny is NamespaceIsolation)")
        if not props.pod_selector and not props.select_all_pods:
            raise ValueError(f"NetworkPolicy {props.name}: an allow policy must select pods by label, not the whole namespace")
        for rule in [*props.ingress, *props.egress]:
            if not rule.get("ports"):
                raise ValueError(f"NetworkPolicy {props.name}: every rule names its ports (an all-ports rule is never generated)")
            peers = rule.get("from", rule.get("to"))
            if not peers:
                raise ValueError(f"NetworkPolicy {props.name}: every rule names its peers (an any-peer rule is never generated)")
        spec: dict[str, Any] = {"podSelector": {"matchLabels": dict(props.pod_selector)} if props.pod_selector else {},
                                "policyTypes": []}
        if props.ingress:
            spec["policyTypes"].append("Ingress")
            spec["ingress"] = props.ingress
        if props.egress:
            spec["policyTypes"].append("Egress")
            spec["egress"] = props.egress
        super().__init__(scope, id, body={"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                                          "metadata": {"name": props.name, "namespace": props.namespace}, "spec": spec})


@dataclass(frozen=True)
class NamespaceIsolationProps:
    namespace: str


class NamespaceIsolation(Construct):
    """Creates a default-deny NetworkPolicy (Ingress+Egress, all pods) and an allow-DNS NetworkPolicy
    (egress to kube-dns only) in an existing namespace."""

    def __init__(self, scope: Construct, id: str, *, props: NamespaceIsolationProps) -> None:
        super().__init__(scope, id)
        ns = props.namespace
        self.deny = KubernetesObject(self, "default-deny", body={
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "default-deny", "namespace": ns},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}})
        self.dns = KubernetesObject(self, "allow-dns", body={
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "allow-dns", "namespace": ns},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{
                "to": [{"namespaceSelector": {"matchLabels": {NS_NAME_LABEL: "kube-system"}},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]}})
