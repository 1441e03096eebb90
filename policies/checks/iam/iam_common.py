"""IAM reading shared by the TW-IAM checks: which roles are workload roles, and which policy
documents reach them. Pure functions over the Index."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from tierwise.policies.engine import Index, Resource, as_list, policy_statements

POD_IDENTITY = "pods.eks.amazonaws.com"


def trust_statements(role: Resource) -> tuple[list[dict] | None, str]:
    return policy_statements(role.body.get("assume_role_policy"))


def principals(stmt: dict, kind: str) -> list[str]:
    p = stmt.get("Principal")
    if not isinstance(p, dict):
        return [p] if isinstance(p, str) and kind == "AWS" else []
    return [str(x) for x in as_list(p.get(kind))]


def is_pod_identity_trust(stmt: dict) -> bool:
    return stmt.get("Effect", "Allow") == "Allow" and POD_IDENTITY in principals(stmt, "Service")


def is_irsa_trust(stmt: dict) -> bool:
    acts = [str(a) for a in as_list(stmt.get("Action"))]
    return stmt.get("Effect", "Allow") == "Allow" and any("oidc-provider" in f or "oidc" in f for f in principals(stmt, "Federated")) \
        and any(a in ("sts:AssumeRoleWithWebIdentity", "sts:*", "*") for a in acts)


def workload_roles(index: Index) -> list[tuple[Resource, list[dict]]]:
    """Roles that pods assume: trusted by EKS Pod Identity or by an OIDC provider (IRSA)."""
    out = []
    for role in index.of_type("aws_iam_role"):
        stmts, _ = trust_statements(role)
        if stmts and any(is_pod_identity_trust(s) or is_irsa_trust(s) for s in stmts):
            out.append((role, stmts))
    return out


@dataclass(frozen=True)
class PolicyDoc:
    """One policy document and where it lives (for messages) — an inline policy, a customer policy, or a role's inline_policy."""

    owner: Resource
    label: str
    document: object


def role_policies(index: Index, role: Resource) -> Iterator[PolicyDoc]:
    for ip in as_list(role.body.get("inline_policy")):
        if isinstance(ip, dict):
            yield PolicyDoc(role, f"inline_policy {ip.get('name', '')!r}", ip.get("policy"))
    for rp in index.of_type("aws_iam_role_policy"):
        if index.resolve(rp.stack, rp.body.get("role"), "aws_iam_role") is role:
            yield PolicyDoc(rp, "inline role policy", rp.body.get("policy"))
    for att in index.of_type("aws_iam_role_policy_attachment"):
        if index.resolve(att.stack, att.body.get("role"), "aws_iam_role") is role:
            pol = index.resolve(att.stack, att.body.get("policy_arn"), "aws_iam_policy")
            if pol is not None:
                yield PolicyDoc(pol, "customer managed policy", pol.body.get("policy"))


def all_policy_documents(index: Index) -> Iterator[PolicyDoc]:
    """Every IAM permission document in the synth output (not trust policies)."""
    for role in index.of_type("aws_iam_role"):
        for ip in as_list(role.body.get("inline_policy")):
            if isinstance(ip, dict):
                yield PolicyDoc(role, f"inline_policy {ip.get('name', '')!r}", ip.get("policy"))
    for t in ("aws_iam_role_policy", "aws_iam_policy", "aws_iam_user_policy", "aws_iam_group_policy"):
        for r in index.of_type(t):
            yield PolicyDoc(r, t, r.body.get("policy"))
