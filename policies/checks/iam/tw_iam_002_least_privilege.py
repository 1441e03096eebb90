"""TW-IAM-002: no workload policy statement allows `*` / `service:*` actions, or `*` resources for write actions."""

from __future__ import annotations

import re
from typing import Iterable

from tierwise.policies.checks.iam.iam_common import all_policy_documents, role_policies, workload_roles
from tierwise.policies.engine import FAIL, PASS, UNKNOWN, CheckMeta, Index, Result, as_list, policy_statements, result

#: Verbs that only read. Anything else is treated as a write (conservative: kms:Decrypt counts as write).
READ_VERBS = ("Get", "List", "Describe", "BatchGet", "Head", "Search", "Lookup", "Query", "Scan", "Select", "View", "Retrieve")
BROAD_MANAGED = re.compile(r"arn:aws[a-z-]*:iam::aws:policy/(AdministratorAccess|PowerUserAccess|IAMFullAccess|.*FullAccess)$")


def is_read_action(action: str) -> bool:
    verb = action.split(":", 1)[1] if ":" in action else action
    return verb.startswith(READ_VERBS)


class LeastPrivilege:
    meta = CheckMeta(
        id="TW-IAM-002",
        title="Workload policies grant named actions, and write actions only on named resources",
        severity="HIGH",
        categories=("IAM",),
        resource_types=("aws_iam_role_policy", "aws_iam_policy", "aws_iam_role", "aws_iam_role_policy_attachment"),
        rationale="`*` or `service:*` actions grant every future API of a service; write actions on `*` reach "
                  "every bucket, queue or key in the account.",
        fix="List the exact actions the workload calls and scope write actions to ARNs of the resources it owns "
            "(constructs/identity: `statements=[...]`).",
        protects="identity scoping: blast radius of one workload's credentials",
    )

    def run(self, index: Index) -> Iterable[Result]:
        m = self.meta
        docs = {}
        for role, _ in workload_roles(index):
            for d in role_policies(index, role):
                docs[(id(d.owner), d.label)] = d
            for att in index.of_type("aws_iam_role_policy_attachment"):
                if index.resolve(att.stack, att.body.get("role"), "aws_iam_role") is role:
                    arn = str(att.body.get("policy_arn", ""))
                    if BROAD_MANAGED.match(arn):
                        yield result(m, FAIL, att, f"{att.address}: attaches {arn} to workload role {role.address}; "
                                                   "replace it with a scoped policy", finding=f"Managed::{arn.rsplit('/', 1)[-1]}")
        for d in all_policy_documents(index):  # customer policies are written to be attached to workloads
            if d.owner.type == "aws_iam_policy":
                docs.setdefault((id(d.owner), d.label), d)
        for d in docs.values():
            stmts, why = policy_statements(d.document)
            if stmts is None:
                yield result(m, UNKNOWN, d.owner, f"{d.owner.address} ({d.label}): {why}")
                continue
            bad = 0
            for i, s in enumerate(stmts):
                if s.get("Effect", "Allow") != "Allow":
                    continue
                sid = s.get("Sid") or f"#{i}"
                if "NotAction" in s:
                    bad += 1
                    yield result(m, FAIL, d.owner, f"{d.owner.address} statement {sid}: Allow with NotAction grants "
                                                   "everything not listed; list allowed actions instead", finding=f"NotAction::{sid}")
                    continue
                actions = [str(a) for a in as_list(s.get("Action"))]
                for a in actions:
                    if a == "*" or re.fullmatch(r"[a-z0-9-]+:\*", a):
                        bad += 1
                        yield result(m, FAIL, d.owner, f"{d.owner.address} statement {sid}: action {a!r} allows every "
                                                       "API of the service; name the actions", finding=f"Action::{a}")
                resources = [str(r) for r in as_list(s.get("Resource"))]
                if "NotResource" in s:
                    resources = ["*"]
                if "*" in resources:
                    writes = [a for a in actions if not (a == "*" or a.endswith(":*")) and not is_read_action(a)]
                    for a in writes:
                        bad += 1
                        yield result(m, FAIL, d.owner, f"{d.owner.address} statement {sid}: write action {a!r} on "
                                                       "Resource '*'; scope it to the workload's own ARNs", finding=f"Resource::*::{a}")
            if not bad:
                yield result(m, PASS, d.owner, f"{d.owner.address} ({d.label}): {len(stmts)} statements scoped")
