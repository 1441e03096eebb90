"""Agent reading shared by the TW-AGENT checks: which workloads are agents, their pod labels and service
account, the NetworkPolicies that select their pods, and how a NetworkPolicy peer is described.
Pure functions over the Index."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tierwise.policies.engine import Index, Resource, as_list

AGENT_LABEL = "tierwise.io/agent"
DECLARED_EGRESS_ANNOTATION = "tierwise.io/declared-egress"
NS_NAME_LABEL = "kubernetes.io/metadata.name"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "LeaderWorkerSet")


def _d(x: Any) -> dict:
    return x if isinstance(x, dict) else {}


@dataclass(frozen=True)
class AgentPods:
    resource: Resource
    name: str
    namespace: str
    service_account: str
    pod_labels: dict
    pod_spec: dict

    @property
    def annotations(self) -> dict:
        return _d(_d(self.resource.manifest.get("metadata")).get("annotations"))


def pod_template(r: Resource) -> dict:
    spec = _d(r.manifest.get("spec"))
    if r.kind == "CronJob":
        spec = _d(_d(_d(spec.get("jobTemplate")).get("spec")))
    if r.kind == "LeaderWorkerSet":
        return _d(_d(spec.get("leaderWorkerTemplate")).get("leaderTemplate"))
    return _d(spec.get("template"))


def agents(index: Index) -> list[AgentPods]:
    """Workloads labelled `tierwise.io/agent` (the AgentWorkload construct sets it)."""
    out = []
    for kind in WORKLOAD_KINDS:
        for r in index.k8s(kind):
            if AGENT_LABEL not in r.labels:
                continue
            tmpl = pod_template(r)
            spec = _d(tmpl.get("spec"))
            out.append(AgentPods(r, str(r.labels[AGENT_LABEL]), r.namespace or "default",
                                 str(spec.get("serviceAccountName") or spec.get("serviceAccount") or ""),
                                 _d(_d(tmpl.get("metadata")).get("labels")), spec))
    return out


def workloads(index: Index) -> list[tuple[Resource, str, str, dict]]:
    """Every workload: (resource, namespace, service account, pod labels)."""
    out = []
    for kind in WORKLOAD_KINDS:
        for r in index.k8s(kind):
            tmpl = pod_template(r)
            spec = _d(tmpl.get("spec"))
            out.append((r, r.namespace or "default", str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"),
                        _d(_d(tmpl.get("metadata")).get("labels"))))
    return out


def selects(selector: Any, labels: dict) -> bool | None:
    """Whether a LabelSelector selects `labels`; None when it cannot be judged (unknown operators)."""
    sel = _d(selector)
    for k, v in _d(sel.get("matchLabels")).items():
        if labels.get(k) != v:
            return False
    for e in as_list(sel.get("matchExpressions")):
        e = _d(e)
        key, op, vals = e.get("key"), e.get("operator"), [str(v) for v in as_list(e.get("values"))]
        if op == "In" and labels.get(key) not in vals:
            return False
        if op == "NotIn" and labels.get(key) in vals:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return None
    return True


def egress_policies(index: Index, a: AgentPods) -> list[Resource]:
    """NetworkPolicies in the agent's namespace that select its pods and govern egress."""
    out = []
    for p in index.k8s("NetworkPolicy"):
        if (p.namespace or "default") != a.namespace:
            continue
        spec = _d(p.manifest.get("spec"))
        types = [str(t) for t in as_list(spec.get("policyTypes"))] or (["Egress"] if "egress" in spec else [])
        if "Egress" in types and selects(spec.get("podSelector"), a.pod_labels) is not False:
            out.append(p)
    return out


def peer_namespace(peer: dict, own: str) -> str | None:
    """The single namespace a peer names; `own` without a namespaceSelector; None when it spans several or any."""
    if "namespaceSelector" not in peer:
        return own
    ns = _d(peer.get("namespaceSelector"))
    ml, me = _d(ns.get("matchLabels")), as_list(ns.get("matchExpressions"))
    if set(ml) == {NS_NAME_LABEL} and not me:
        return str(ml[NS_NAME_LABEL])
    if not ml and len(me) == 1:
        e = _d(me[0])
        vals = as_list(e.get("values"))
        if e.get("key") == NS_NAME_LABEL and e.get("operator") == "In" and len(vals) == 1:
            return str(vals[0])
    return None


def is_kube_dns(peer: dict, ports: list[dict]) -> bool:
    return (peer_namespace(peer, "") == "kube-system" and _d(_d(peer.get("podSelector")).get("matchLabels")) == {"k8s-app": "kube-dns"}
            and bool(ports) and all(_d(p).get("port") == 53 for p in ports))


def port_numbers(ports: Any) -> list[Any]:
    return [_d(p).get("port") for p in as_list(ports)]


def declared_egress(a: AgentPods) -> tuple[dict | None, str]:
    raw = a.annotations.get(DECLARED_EGRESS_ANNOTATION)
    if raw is None:
        return None, f"no {DECLARED_EGRESS_ANNOTATION} annotation"
    try:
        d = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as e:
        return None, f"{DECLARED_EGRESS_ANNOTATION} is not JSON ({e})"
    return (d, "") if isinstance(d, dict) else (None, f"{DECLARED_EGRESS_ANNOTATION} is not an object")
