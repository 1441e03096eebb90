"""TW-AGENT-003: an agent's egress is limited to the router and the tools it declared."""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable

from tierwise.policies.checks.agents.agent_common import (
    DECLARED_EGRESS_ANNOTATION, agents, declared_egress, egress_policies, is_kube_dns, peer_namespace, port_numbers)
from tierwise.policies.engine import FAIL, PASS, CheckMeta, Index, Result, as_list, result

POD_IDENTITY_AGENT = ("169.254.170.23/32", 80)
PRIVATE = [ipaddress.ip_network(p) for p in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")]


def _public_only(block: dict) -> bool:
    """0.0.0.0/0 minus every private and link-local range: only public addresses (the firewall path)."""
    try:
        if ipaddress.ip_network(str(block.get("cidr"))) != ipaddress.ip_network("0.0.0.0/0"):
            return False
        excepted = [ipaddress.ip_network(str(e)) for e in as_list(block.get("except"))]
    except ValueError:
        return False
    return all(any(p.subnet_of(e) for e in excepted) for p in PRIVATE)


def _peer_ok(peer: dict, ports: list, own_ns: str, decl: dict) -> str:
    """'' when the peer+ports is declared, else why not."""
    if is_kube_dns(peer, [{"port": p} for p in ports]):
        return ""
    if "ipBlock" in peer:
        block = peer.get("ipBlock") or {}
        cidr = str(block.get("cidr"))
        if cidr == POD_IDENTITY_AGENT[0] and ports == [POD_IDENTITY_AGENT[1]] and not block.get("except"):
            return ""
        if cidr == decl.get("vpc_cidr") and ports == [443] and not block.get("except"):
            return ""  # interface VPC endpoints (SQS, STS, KMS) on 443
        if _public_only(block) and ports == [443]:
            if decl.get("fqdns") or decl.get("public_aws"):
                return ""
            return "public 443 (firewall path) but the agent declared no external FQDN or public AWS endpoint"
        return f"ipBlock {cidr} on ports {ports} is not a declared destination"
    if "podSelector" not in peer:
        return f"every pod of namespace {peer_namespace(peer, own_ns) or '(several)'}"
    ns = peer_namespace(peer, own_ns)
    labels = (peer.get("podSelector") or {}).get("matchLabels") or {}
    if ns is None or not labels or (peer.get("podSelector") or {}).get("matchExpressions"):
        return f"pods {labels or '(any)'} in {ns or 'several namespaces'} (too broad to match a declared tool)"
    for d in [decl.get("router") or {}, *as_list(decl.get("services"))]:
        if isinstance(d, dict) and d.get("namespace") == ns and d.get("pod_labels") == labels and ports == [d.get("port")]:
            return ""
    return f"pods {labels} in {ns} on ports {ports} are neither the router nor a declared tool"


class AgentDeclaredEgress:
    meta = CheckMeta(
        id="TW-AGENT-003",
        title="An agent's egress is limited to the router and its declared tools",
        severity="HIGH",
        categories=("NETWORKING", "KUBERNETES", "AGENTS"),
        resource_types=("kubernetes_manifest",),
        rationale="An agent decides at run time what to call. Its reach must be what was reviewed in its `tools:` "
                  "list: any other NetworkPolicy egress lets a prompt-injected agent exfiltrate data or call "
                  "services nobody approved.",
        fix="Declare the tool under the agent's `tools:` in environments/<env>.yaml (kind service/external/aws) and let "
            "AgentWorkload generate the NetworkPolicy; remove hand-written egress rules that select the agent's pods.",
        protects="agents: reach limited to declared tools",
    )

    def run(self, index: Index) -> Iterable[Result]:
        m = self.meta
        for ag in agents(index):
            r, where = ag.resource, f"{ag.resource.address} (agent {ag.name})"
            decl, why = declared_egress(ag)
            if decl is None:
                yield result(m, FAIL, r, f"{where}: {why}; add the agent through `agents:` so its declared egress is "
                                         f"recorded ({DECLARED_EGRESS_ANNOTATION})", finding="Declaration::missing")
                continue
            pols = egress_policies(index, ag)
            if not pols:
                yield result(m, FAIL, r, f"{where}: no NetworkPolicy restricts its egress (namespace {ag.namespace}); "
                                         "add the default-deny and the agent's egress policy", finding="Egress::unrestricted")
                continue
            bad = 0
            for p in pols:
                for i, rule in enumerate(as_list((p.manifest.get("spec") or {}).get("egress"))):
                    rule: Any = rule if isinstance(rule, dict) else {}
                    ports = port_numbers(rule.get("ports"))
                    peers = [x for x in as_list(rule.get("to")) if isinstance(x, dict)]
                    if not peers or not ports:
                        bad += 1
                        yield result(m, FAIL, r, f"{where}: {p.address} egress rule {i} allows "
                                                 f"{'any destination' if not peers else 'every port'}; remove it or name "
                                                 "the declared tool's pods and port", finding=f"Egress::{p.k8s_name}::{i}")
                        continue
                    for peer in peers:
                        problem = _peer_ok(peer, ports, p.namespace or "default", decl)
                        if problem:
                            bad += 1
                            yield result(m, FAIL, r, f"{where}: {p.address} allows {problem}; declare it under the agent's "
                                                     "tools or remove the rule", finding=f"Egress::{p.k8s_name}::{i}")
            if not bad:
                yield result(m, PASS, r, f"{where}: {len(pols)} egress policies, every destination declared")
