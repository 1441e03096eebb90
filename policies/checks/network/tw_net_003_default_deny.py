"""TW-NET-003: every namespace the blueprint creates or runs workloads in denies ingress and egress by default.

The namespaces are derived from the synth output alone: every Namespace object (kubernetes_manifest or
kubernetes_namespace), the namespace of every emitted object that runs pods (any kind whose spec carries a pod
template: Deployment, StatefulSet, DaemonSet, Job, CronJob, LeaderWorkerSet, ...), and the namespace of every
helm_release ("default" when it names none). Team, shared-platform (serving, monitoring) and chart namespaces
alike: the serving namespace, where vLLM, the router, RAG and guardrails run, is not exempt.

One exception, stated in RULES.md: namespaces Kubernetes/EKS own (kube-system, kube-public, kube-node-lease) are
not applicable while only Helm charts run there (upstream installs Karpenter into kube-system; the EKS add-ons
CoreDNS, VPC CNI and kube-proxy live there and a namespace-wide deny would cut cluster DNS). A blueprint manifest
placed there is checked like any other. Controller namespaces created by charts (keda, kueue-system, ...) are
checked: a missing default-deny there is a finding, accepted only through an expiring suppression.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from tierwise.policies.engine import FAIL, NOT_APPLICABLE, PASS, CheckMeta, Index, Resource, as_list, result

TEAM_LABEL = "tierwise.io/team"
#: Owned by Kubernetes/EKS, not by the blueprint: not applicable while only Helm charts run there.
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")


def denied_directions(policy: dict) -> set[str]:
    """Directions a NetworkPolicy denies by default for every pod of its namespace."""
    spec = policy.get("spec") if isinstance(policy.get("spec"), dict) else {}
    sel = spec.get("podSelector")
    if not isinstance(sel, dict) or any(sel.get(k) for k in ("matchLabels", "matchExpressions")):
        return set()
    types = [str(t) for t in as_list(spec.get("policyTypes"))] or (["Ingress"] + (["Egress"] if "egress" in spec else []))
    out = set()
    for t in types:
        rules = spec.get(t.lower())
        if not rules:  # absent or empty list: nothing allowed in that direction
            out.add(t)
    return out


def runs_pods(spec: Any, depth: int = 0) -> bool:
    """True when a manifest's spec carries a pod spec (`containers`) at any depth (templates, jobTemplate, LWS)."""
    if depth > 8:
        return False
    if isinstance(spec, dict):
        if isinstance(spec.get("containers"), list):
            return True
        return any(runs_pods(v, depth + 1) for v in spec.values() if isinstance(v, (dict, list)))
    if isinstance(spec, list):
        return any(runs_pods(v, depth + 1) for v in spec)
    return False


@dataclass
class Scope:
    """How the blueprint touches one namespace, and the resource a finding anchors on (the Namespace if emitted)."""

    created: list[Resource] = field(default_factory=list)
    workloads: list[Resource] = field(default_factory=list)
    charts: list[Resource] = field(default_factory=list)

    @property
    def anchor(self) -> Resource:
        return (self.created or self.workloads or self.charts)[0]

    def why(self) -> str:
        parts = []
        if self.created:
            parts.append("created by the blueprint")
        if self.workloads:
            parts.append("runs " + ", ".join(f"{w.kind or w.type}/{w.k8s_name or _metadata(w.body, 'name')}" for w in self.workloads[:3])
                         + (f" and {len(self.workloads) - 3} more" if len(self.workloads) > 3 else ""))
        if self.charts:
            parts.append("Helm chart " + ", ".join(str(c.body.get("chart", c.name)) for c in self.charts))
        return "; ".join(parts)


#: The kubernetes provider's typed workload resources (their `metadata` block names the namespace).
TYPED_WORKLOADS = tuple(f"kubernetes_{k}{v}" for k in ("deployment", "stateful_set", "daemon_set", "daemonset", "job",
                                                       "cron_job", "pod", "replication_controller") for v in ("", "_v1"))


def _metadata(body: dict, key: str, default: str = "") -> str:
    md = body.get("metadata")
    md = md[0] if isinstance(md, list) and md else md
    return str(md.get(key) or default) if isinstance(md, dict) else default


def blueprint_namespaces(index: Index) -> dict[str, Scope]:
    scopes: dict[str, Scope] = {}
    for ns in index.k8s("Namespace"):
        scopes.setdefault(ns.k8s_name, Scope()).created.append(ns)
    for r in index.of_type("kubernetes_namespace", "kubernetes_namespace_v1"):
        scopes.setdefault(_metadata(r.body, "name"), Scope()).created.append(r)
    for r in index.of_type(*TYPED_WORKLOADS):
        scopes.setdefault(_metadata(r.body, "namespace", "default"), Scope()).workloads.append(r)
    for r in index.of_type("kubernetes_manifest"):
        if r.namespace and runs_pods(r.manifest.get("spec")):
            scopes.setdefault(r.namespace, Scope()).workloads.append(r)
    for r in index.of_type("helm_release"):
        ns = r.body.get("namespace")
        scopes.setdefault(ns if isinstance(ns, str) and ns else "default", Scope()).charts.append(r)
    return scopes


class DefaultDeny:
    meta = CheckMeta(
        id="TW-NET-003",
        title="Every namespace the blueprint creates or runs workloads in denies ingress and egress by default",
        severity="HIGH",
        categories=("NETWORKING", "KUBERNETES"),
        resource_types=("kubernetes_manifest", "kubernetes_namespace", "helm_release"),
        rationale="Without a default deny, any pod can reach any other namespace's services (the model servers, the "
                  "router, another team) and the internet path; allow rules are only meaningful on top of a deny. "
                  "Scope, from the synth output: every Namespace emitted, every namespace an emitted pod-running object "
                  "or helm_release lands in. kube-system/kube-public/kube-node-lease are EKS's and not applicable while "
                  "only Helm charts run there; chart controller namespaces are checked (an exemption is an expiring "
                  "suppression).",
        fix="Keep a `default-deny` NetworkPolicy (podSelector {}, policyTypes [Ingress, Egress], no rules) in every "
            "namespace the blueprint creates or deploys to, with exact allow policies beside it; for a chart's "
            "namespace, create the Namespace with its policies before the release.",
        protects="isolation of every namespace the platform runs in: teams, serving, monitoring, controllers",
    )

    def run(self, index: Index) -> Iterable[Result]:
        m = self.meta
        denied: dict[str, set[str]] = {}
        for p in index.k8s("NetworkPolicy"):
            denied.setdefault(p.namespace, set()).update(denied_directions(p.manifest))
        for ns, scope in sorted(blueprint_namespaces(index).items()):
            a = scope.anchor
            if ns in SYSTEM_NAMESPACES and not scope.created and not scope.workloads:
                yield result(m, NOT_APPLICABLE, a, f"{a.address}: namespace {ns!r} belongs to EKS ({scope.why()}): "
                                                   "not applicable", finding=f"Namespace::{ns}")
                continue
            missing = sorted({"Ingress", "Egress"} - denied.get(ns, set()))
            team = next((str(c.labels.get(TEAM_LABEL)) for c in scope.created if c.labels.get(TEAM_LABEL)), "")
            who = f" (team {team})" if team else ""
            if missing:
                yield result(m, FAIL, a, f"{a.address}: namespace {ns!r}{who} ({scope.why()}) has no default-deny for "
                                         f"{'/'.join(missing)}; add a NetworkPolicy in {ns!r} with podSelector {{}}, "
                                         f"policyTypes {missing} and no rules", finding=f"Namespace::{ns}")
            else:
                yield result(m, PASS, a, f"{a.address}: namespace {ns!r}{who} denies ingress and egress by default",
                             finding=f"Namespace::{ns}")
