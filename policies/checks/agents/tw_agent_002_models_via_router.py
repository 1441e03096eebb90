"""TW-AGENT-002: no agent can reach Bedrock or any model endpoint except through the router."""

from __future__ import annotations

import fnmatch
import ipaddress
from typing import Iterable

from tierwise.policies.checks.agents.agent_common import (
    WORKLOAD_KINDS, agents, egress_policies, peer_namespace, pod_template, port_numbers, selects)
from tierwise.policies.checks.iam.iam_common import role_policies
from tierwise.policies.engine import FAIL, PASS, UNKNOWN, CheckMeta, Index, Result, as_list, policy_statements, result

#: API actions that run a model; an agent's own role may hold none of them (wildcards are matched too).
MODEL_ACTIONS = ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream", "bedrock:Converse",
                 "bedrock:ConverseStream", "bedrock:InvokeAgent", "bedrock:InvokeInlineAgent", "bedrock:RetrieveAndGenerate",
                 "bedrock:InvokeFlow", "sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointAsync",
                 "sagemaker:InvokeEndpointWithResponseStream")
MODEL_COMPONENT = ("app.kubernetes.io/component", "model-server")


def _model_actions(actions: list[str]) -> list[str]:
    return sorted({a for a in actions for x in MODEL_ACTIONS if fnmatch.fnmatchcase(x.lower(), a.lower())})


def model_servers(index: Index) -> list[tuple[str, dict, set]]:
    """(namespace, pod labels, container ports) of every model server in the synth output."""
    out = []
    k, v = MODEL_COMPONENT
    for kind in WORKLOAD_KINDS:
        for r in index.k8s(kind):
            if r.labels.get(k) != v:
                continue
            tmpl = pod_template(r)
            labels = (tmpl.get("metadata") or {}).get("labels") or {}
            ports = {p.get("containerPort") for c in as_list((tmpl.get("spec") or {}).get("containers"))
                     if isinstance(c, dict) for p in as_list(c.get("ports")) if isinstance(p, dict)}
            out.append((r.namespace or "default", labels, ports))
    return out


def _private(block: str) -> bool:
    try:
        net = ipaddress.ip_network(block, strict=False)
    except ValueError:
        return True  # unparseable: assume it may contain pods
    return any(net.overlaps(ipaddress.ip_network(p)) for p in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


class AgentModelsViaRouter:
    meta = CheckMeta(
        id="TW-AGENT-002",
        title="Agents reach Bedrock and model servers only through the router",
        severity="CRITICAL",
        categories=("IAM", "NETWORKING", "LLM", "AGENTS"),
        resource_types=("kubernetes_manifest", "aws_iam_role_policy", "aws_iam_policy"),
        rationale="The router is the one exit for model calls: it enforces the team's models, budget, rate limits and "
                  "guardrails, and meters every token. An agent that can invoke Bedrock or a vLLM server directly "
                  "bypasses all of them.",
        fix="Remove bedrock:*/sagemaker:Invoke* actions from the agent's `aws` tools and any NetworkPolicy egress to "
            "model-server pods; list the model under the agent's `models:` and call it through the router.",
        protects="agents: every model call is paced, metered and guarded by the router",
        unsuppressible=True,
    )

    def run(self, index: Index) -> Iterable[Result]:
        m = self.meta
        servers = model_servers(index)
        model_ports = {p for _, _, ports in servers for p in ports if p is not None}
        for ag in agents(index):
            r, where, bad = ag.resource, f"{ag.resource.address} (agent {ag.name})", 0
            # -- IAM: the agent's own role -------------------------------------------------------
            for a in index.of_type("aws_eks_pod_identity_association"):
                if (str(a.body.get("namespace")), str(a.body.get("service_account"))) != (ag.namespace, ag.service_account):
                    continue
                role = index.resolve(a.stack, a.body.get("role_arn"), "aws_iam_role")
                if role is None:
                    yield result(m, UNKNOWN, r, f"{where}: role of {a.address} is not in the synth output")
                    bad += 1
                    continue
                for d in role_policies(index, role):
                    stmts, why = policy_statements(d.document)
                    if stmts is None:
                        yield result(m, UNKNOWN, r, f"{where}: {d.owner.address}: {why}")
                        bad += 1
                        continue
                    for s in stmts:
                        if s.get("Effect", "Allow") != "Allow":
                            continue
                        acts = ["*"] if "NotAction" in s else [str(x) for x in as_list(s.get("Action"))]
                        for act in _model_actions(acts):
                            bad += 1
                            yield result(m, FAIL, r, f"{where}: {d.owner.address} allows {act} (statement "
                                                     f"{s.get('Sid', '?')}); remove it and call the model through the router",
                                         finding=f"Action::{act}")
            # -- network: egress peers that are model servers ------------------------------------
            for p in egress_policies(index, ag):
                for rule in as_list((p.manifest.get("spec") or {}).get("egress")):
                    if not isinstance(rule, dict):
                        continue
                    ports = port_numbers(rule.get("ports"))
                    hits_model_port = not ports or any(x in model_ports or not isinstance(x, int) for x in ports)
                    for peer in as_list(rule.get("to")) or [{}]:
                        peer = peer if isinstance(peer, dict) else {}
                        if "ipBlock" in peer or not peer:
                            block = str((peer.get("ipBlock") or {}).get("cidr", "0.0.0.0/0"))
                            if hits_model_port and _private(block) and servers:
                                bad += 1
                                yield result(m, FAIL, r, f"{where}: {p.address} allows egress to {block} on ports "
                                                         f"{ports or 'all'}, which covers model-server pods; remove the rule "
                                                         "or scope its ports", finding=f"Egress::{p.k8s_name}::{block}")
                            continue
                        ns = peer_namespace(peer, p.namespace or "default")
                        for sns, labels, sports in servers:
                            if ns is not None and ns != sns:
                                continue
                            if "podSelector" in peer and selects(peer.get("podSelector"), labels) is False:
                                continue
                            if ports and not any(x in sports or not isinstance(x, int) for x in ports):
                                continue
                            bad += 1
                            yield result(m, FAIL, r, f"{where}: {p.address} allows egress to model-server pods "
                                                     f"{labels.get('app.kubernetes.io/name', labels)} in {sns}; remove the "
                                                     "rule and call the model through the router",
                                         finding=f"Egress::{p.k8s_name}::{labels.get('app.kubernetes.io/name', sns)}")
                            break
            if not bad:
                yield result(m, PASS, r, f"{where}: no model actions on its role, no egress to model servers")
