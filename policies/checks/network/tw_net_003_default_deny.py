"""TW-NET-003: every team namespace has a default-deny NetworkPolicy for ingress and egress."""

from __future__ import annotations

from typing import Iterable

from tierwise.policies.engine import FAIL, PASS, CheckMeta, Index, Result, as_list, result

TEAM_LABEL = "tierwise.io/team"


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


class DefaultDeny:
    meta = CheckMeta(
        id="TW-NET-003",
        title="Every team namespace denies ingress and egress by default",
        severity="HIGH",
        categories=("NETWORKING", "KUBERNETES"),
        resource_types=("kubernetes_manifest",),
        rationale="Without a default deny, any pod can reach any other team's services and the internet path; "
                  "allow rules are only meaningful on top of a deny.",
        fix="Keep the tenancy stack's `default-deny` NetworkPolicy (podSelector {}, policyTypes [Ingress, Egress]) in "
            "every namespace listed under teams[].namespaces.",
        protects="tenant isolation between team namespaces",
    )

    def run(self, index: Index) -> Iterable[Result]:
        m = self.meta
        denied: dict[str, set[str]] = {}
        for p in index.k8s("NetworkPolicy"):
            denied.setdefault(p.namespace, set()).update(denied_directions(p.manifest))
        for ns in index.k8s("Namespace"):
            team = ns.labels.get(TEAM_LABEL)
            if not team or team == "shared":
                continue
            missing = sorted({"Ingress", "Egress"} - denied.get(ns.k8s_name, set()))
            if missing:
                yield result(m, FAIL, ns, f"{ns.address}: team namespace {ns.k8s_name!r} (team {team}) has no default-deny "
                                          f"for {'/'.join(missing)}; add a NetworkPolicy with podSelector {{}} and "
                                          f"policyTypes {missing} and no rules", finding=f"Namespace::{ns.k8s_name}")
            else:
                yield result(m, PASS, ns, f"{ns.address}: namespace {ns.k8s_name!r} denies ingress and egress by default")
