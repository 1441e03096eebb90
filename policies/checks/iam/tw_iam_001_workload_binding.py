"""TW-IAM-001: every workload role is bound to exactly one namespace + service account."""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from tierwise.policies.checks.iam.iam_common import is_irsa_trust, is_pod_identity_trust, workload_roles
from tierwise.policies.engine import FAIL, PASS, UNKNOWN, CheckMeta, Index, Result, as_list, is_ref, result


class WorkloadRoleBinding:
    meta = CheckMeta(
        id="TW-IAM-001",
        title="Every workload role is bound to exactly one namespace and service account",
        severity="HIGH",
        categories=("IAM",),
        resource_types=("aws_iam_role", "aws_eks_pod_identity_association"),
        rationale="A role shared by two workloads, or trusted by any service account, lets one compromised pod act "
                  "with another workload's permissions.",
        fix="Give each workload its own role (constructs/identity WorkloadIdentity) with one Pod Identity association, "
            "or an IRSA trust with StringEquals on both `<oidc>:sub` (one service account) and `<oidc>:aud`.",
        protects="identity scoping: one role, one pod identity",
    )

    def run(self, index: Index) -> Iterable[Result]:
        m = self.meta
        roles = workload_roles(index)
        role_ids = {id(r) for r, _ in roles}
        bindings: dict[int, list[str]] = defaultdict(list)
        by_sa: dict[tuple, list] = defaultdict(list)
        for a in index.of_type("aws_eks_pod_identity_association"):
            role = index.resolve(a.stack, a.body.get("role_arn"), "aws_iam_role")
            ns, sa = a.body.get("namespace"), a.body.get("service_account")
            if role is None:
                yield result(m, UNKNOWN, a, f"{a.address}: role_arn {a.body.get('role_arn')!r} does not resolve to an "
                                            "aws_iam_role in the synth output; cannot prove which role this binds")
                continue
            if id(role) not in role_ids:
                yield result(m, FAIL, a, f"{a.address}: binds {ns}/{sa} to {role.address}, whose trust policy does not "
                                         "allow pods.eks.amazonaws.com; add the Pod Identity trust to the role")
                continue
            bindings[id(role)].append(f"{ns}/{sa} (pod identity {a.name})")
            by_sa[(a.stack, str(ns), str(sa))].append(role.address)
        for (stack, ns, sa), rs in by_sa.items():
            if len(rs) > 1:
                yield result(m, FAIL, None, f"service account {ns}/{sa} in {stack} has {len(rs)} Pod Identity associations "
                                            f"({', '.join(rs)}); EKS allows one: keep a single role", address=f"{stack}/{ns}/{sa}")
        for role, stmts in roles:
            problems: list[str] = []
            for s in stmts:
                if is_irsa_trust(s):
                    b, why = _irsa_binding(s)
                    if b:
                        bindings[id(role)].append(f"{b} (IRSA)")
                    else:
                        problems.append(why)
            bound = bindings[id(role)]
            if problems:
                yield result(m, FAIL, role, f"{role.address}: IRSA trust {problems[0]}; set a StringEquals condition on "
                                            "`<oidc>:sub` = system:serviceaccount:NS:SA and `<oidc>:aud` = sts.amazonaws.com")
            elif len(bound) == 0:
                pod = any(is_pod_identity_trust(s) for s in stmts)
                yield result(m, FAIL, role, f"{role.address}: workload role trusted by "
                                            f"{'pods.eks.amazonaws.com' if pod else 'an OIDC provider'} but bound to no "
                                            "service account; add one aws_eks_pod_identity_association or delete the role")
            elif len(bound) > 1:
                yield result(m, FAIL, role, f"{role.address}: shared by {len(bound)} workloads ({'; '.join(sorted(bound))}); "
                                            "give each workload its own role")
            else:
                yield result(m, PASS, role, f"{role.address}: bound to {bound[0]}")


def _irsa_binding(stmt: dict) -> tuple[str, str]:
    cond = stmt.get("Condition") if isinstance(stmt.get("Condition"), dict) else {}
    eq = cond.get("StringEquals") if isinstance(cond.get("StringEquals"), dict) else {}
    subs = [v for k, v in eq.items() if str(k).endswith(":sub")]
    auds = [v for k, v in eq.items() if str(k).endswith(":aud")]
    for op in ("StringLike", "ForAnyValue:StringLike"):
        if isinstance(cond.get(op), dict) and any(str(k).endswith(":sub") for k in cond[op]):
            return "", f"matches `sub` with {op} ({cond[op]}), which admits any matching service account"
    if not subs:
        return "", "has no StringEquals condition on `sub` (any service account of the cluster may assume it)"
    if not auds:
        return "", "has no StringEquals condition on `aud`"
    values = [str(v) for s in subs for v in as_list(s)]
    if len(values) != 1:
        return "", f"lists {len(values)} service accounts in `sub` ({values})"
    if "*" in values[0] or "?" in values[0]:
        return "", f"`sub` {values[0]!r} contains a wildcard"
    if not (values[0].startswith("system:serviceaccount:") or is_ref(values[0])):
        return "", f"`sub` {values[0]!r} is not system:serviceaccount:NS:SA"
    return values[0].removeprefix("system:serviceaccount:").replace(":", "/", 1), ""
