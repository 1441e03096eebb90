"""TW-AGENT-001: every agent runs as its own identity — its own service account, bound to its own role."""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from tierwise.policies.checks.agents.agent_common import agents, workloads
from tierwise.policies.engine import FAIL, PASS, UNKNOWN, CheckMeta, Index, Result, result


class AgentOwnIdentity:
    meta = CheckMeta(
        id="TW-AGENT-001",
        title="Every agent runs as its own service account, bound to a role no other workload uses",
        severity="HIGH",
        categories=("IAM", "KUBERNETES", "AGENTS"),
        resource_types=("kubernetes_manifest", "aws_eks_pod_identity_association", "aws_iam_role"),
        rationale="Agents act on their own: an agent sharing a service account or role with another workload cannot "
                  "be audited (whose call was it?) and inherits the other's permissions.",
        fix="Onboard the agent through `agents:` in environments/<env>.yaml (AgentWorkload creates a ServiceAccount "
            "`agent-<name>` and a Pod Identity role for it alone); never set serviceAccountName to a shared account.",
        protects="agents: one identity per agent, for audit and least privilege",
    )

    def run(self, index: Index) -> Iterable[Result]:
        m = self.meta
        users: dict[tuple[str, str], list[str]] = defaultdict(list)
        for r, ns, sa, _ in workloads(index):
            users[(ns, sa)].append(r.address)
        assoc: dict[tuple[str, str], list] = defaultdict(list)
        role_bindings: dict[int, list[str]] = defaultdict(list)
        for a in index.of_type("aws_eks_pod_identity_association"):
            key = (str(a.body.get("namespace")), str(a.body.get("service_account")))
            role = index.resolve(a.stack, a.body.get("role_arn"), "aws_iam_role")
            assoc[key].append((a, role))
            if role is not None:
                role_bindings[id(role)].append(f"{key[0]}/{key[1]}")
        for ag in agents(index):
            r, where = ag.resource, f"{ag.resource.address} (agent {ag.name})"
            if not ag.service_account or ag.service_account == "default":
                yield result(m, FAIL, r, f"{where}: runs as the namespace's default service account; set "
                                         f"serviceAccountName to the agent's own account (agent-{ag.name})", finding="ServiceAccount::default")
                continue
            key = (ag.namespace, ag.service_account)
            others = [x for x in users[key] if x != r.address]
            if others:
                yield result(m, FAIL, r, f"{where}: service account {ag.namespace}/{ag.service_account} is shared with "
                                         f"{', '.join(sorted(others))}; give the agent its own account",
                             finding=f"ServiceAccount::{ag.service_account}")
                continue
            bound = assoc.get(key, [])
            if len(bound) != 1:
                yield result(m, FAIL, r, f"{where}: {len(bound)} Pod Identity associations for {ag.namespace}/"
                                         f"{ag.service_account}; give the agent exactly one (its own role)",
                             finding=f"Association::{len(bound)}")
                continue
            a, role = bound[0]
            if role is None:
                yield result(m, UNKNOWN, r, f"{where}: association {a.address} names role {a.body.get('role_arn')!r}, "
                                            "which is not in the synth output")
                continue
            shared = [b for b in role_bindings[id(role)] if b != f"{key[0]}/{key[1]}"]
            if shared:
                yield result(m, FAIL, r, f"{where}: role {role.address} is also bound to {', '.join(sorted(shared))}; "
                                         "give the agent a role of its own", finding=f"Role::{role.name}")
                continue
            yield result(m, PASS, r, f"{where}: own service account {ag.namespace}/{ag.service_account} bound only to "
                                     f"{role.address}")
