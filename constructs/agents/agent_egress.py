"""The egress an agent is allowed, as data: NetworkPolicy rules plus the declaration the policy gate checks.

Pure helpers (no resources). `egress_rules` turns what an agent declared into NetworkPolicy egress
rules; `declaration` records the same intent as an annotation on the agent's Deployment, so TW-AGENT-003
can compare every NetworkPolicy that selects the agent's pods with what was declared, from cdktf.out alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..serving.network_policy import cidr, pods, tcp
from ..serving.pod_defaults import POD_IDENTITY_AGENT_CIDR

#: Annotation on the agent's Deployment: the egress it declared (JSON, sorted keys).
DECLARED_EGRESS_ANNOTATION = "tierwise.io/declared-egress"
AGENT_LABEL = "tierwise.io/agent"
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"]


@dataclass(frozen=True)
class ServicePeer:
    """Pods of an in-cluster service the agent calls, on one TCP port."""

    name: str
    namespace: str
    pod_labels: dict[str, str]
    port: int


@dataclass(frozen=True)
class AgentEgress:
    router: ServicePeer
    vpc_cidr: str
    #: Declared in-cluster tools, and the guardrails service when a tool needs approval.
    services: list[ServicePeer] = field(default_factory=list)
    #: Declared external hosts (enforced by the firewall's FQDN allowlist).
    fqdns: list[str] = field(default_factory=list)
    #: AWS endpoints reached on public addresses (DynamoDB, S3 gateway endpoints; the firewall bounds the rest).
    public_aws: list[str] = field(default_factory=list)


def public_https() -> dict[str, Any]:
    """Public addresses on 443: leaves the VPC through the network firewall, which admits allowlisted FQDNs only."""
    return {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}}], "ports": tcp(443)}


def egress_rules(e: AgentEgress) -> list[dict[str, Any]]:
    rules = [{"to": [pods(e.router.pod_labels, namespace=e.router.namespace)], "ports": tcp(e.router.port)}]
    for s in sorted(e.services, key=lambda s: (s.namespace, s.name, s.port)):
        rules.append({"to": [pods(s.pod_labels, namespace=s.namespace)], "ports": tcp(s.port)})
    rules.append({"to": [cidr(e.vpc_cidr)], "ports": tcp(443)})  # interface VPC endpoints: SQS, STS, KMS, logs
    rules.append({"to": [cidr(POD_IDENTITY_AGENT_CIDR)], "ports": tcp(80)})  # EKS Pod Identity agent
    if e.fqdns or e.public_aws:
        rules.append(public_https())
    return rules


def declaration(e: AgentEgress) -> str:
    """What the agent declared, in the shape TW-AGENT-003 reads (sorted, deterministic)."""
    svc = lambda s: {"name": s.name, "namespace": s.namespace, "pod_labels": dict(s.pod_labels), "port": s.port}  # noqa: E731
    return json.dumps({
        "router": svc(e.router),
        "services": [svc(s) for s in sorted(e.services, key=lambda s: (s.namespace, s.name, s.port))],
        "fqdns": sorted(e.fqdns), "public_aws": sorted(e.public_aws), "vpc_cidr": e.vpc_cidr,
    }, sort_keys=True)
