"""Writes tests/policies/fixtures/TW-AGENT-00{1,2,3}/: minimal synthesized-shape Terraform JSON in the shape
AgentWorkload emits, with agent Deployments named pass_* / fail_* after the verdict each must get.
Run from anywhere (never from the repo root with -m/-c):  .venv/bin/python tests/agents/make_agent_fixtures.py
The JSON files are committed; this script documents how they were made."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "policies"))
from fixture_json import pol, write  # noqa: E402

VPC = "10.40.0.0/16"
ROUTER = {"app.kubernetes.io/name": "router"}
KB = {"app.kubernetes.io/name": "rag"}


POD_TRUST = pol({"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]})


def k8s(manifest):
    return {"manifest": manifest}


def pods(labels, ns=None):
    p = {"podSelector": {"matchLabels": labels}}
    if ns:
        p["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": ns}}
    return p


def tcp(*ports):
    return [{"protocol": "TCP", "port": p} for p in ports]


def declared(services=(), fqdns=(), public_aws=("dynamodb",)):
    svc = lambda n, ns, labels, port: {"name": n, "namespace": ns, "pod_labels": labels, "port": port}  # noqa: E731
    return json.dumps({"router": svc("router", "tierwise-serving", ROUTER, 8080),
                       "services": [svc(*s) for s in services], "fqdns": list(fqdns), "public_aws": list(public_aws),
                       "vpc_cidr": VPC}, sort_keys=True)


def agent(name, ns="team-a", sa=None, annotation=True, services=(), fqdns=()):
    labels = {"app.kubernetes.io/name": f"agent-{name}", "app.kubernetes.io/component": "agent", "tierwise.io/agent": name}
    md = {"name": f"agent-{name}", "namespace": ns, "labels": labels}
    if annotation:
        md["annotations"] = {"tierwise.io/declared-egress": declared(services, fqdns)}
    spec = {"containers": [{"name": "agent", "image": "x/agent:1"}]}
    if sa is not False:
        spec["serviceAccountName"] = sa or f"agent-{name}"
    return k8s({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": md, "spec": {
        "selector": {"matchLabels": {"app.kubernetes.io/name": f"agent-{name}"}},
        "template": {"metadata": {"labels": labels}, "spec": spec}}})


def netpol(name, ns, selector, egress):
    return k8s({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns},
                "spec": {"podSelector": {"matchLabels": selector} if selector else {}, "policyTypes": ["Egress"], "egress": egress}})


def agent_egress(name, extra=(), public=True):
    rules = [{"to": [pods(ROUTER, "tierwise-serving")], "ports": tcp(8080)},
             {"to": [{"ipBlock": {"cidr": VPC}}], "ports": tcp(443)},
             {"to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}], "ports": tcp(80)}]
    if public:
        rules.append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                                           "169.254.0.0/16"]}}], "ports": tcp(443)})
    return netpol(f"agent-{name}", "team-a", {"app.kubernetes.io/name": f"agent-{name}"}, rules + list(extra))


def identity(name, sa_ns, sa, role, policy=None):
    out = {("aws_eks_pod_identity_association", f"{name}_assoc"): {
        "namespace": sa_ns, "service_account": sa, "role_arn": f"${{aws_iam_role.{role}.arn}}", "cluster_name": "c"}}
    if policy is not None:
        out[("aws_iam_role_policy", f"{name}_policy")] = {"role": f"${{aws_iam_role.{role}.id}}", "policy": policy}
    return out


def role(name):
    return {("aws_iam_role", name): {"assume_role_policy": POD_TRUST}}


QUEUE = pol({"Sid": "ConsumeWorkQueue", "Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage"],
             "Resource": "arn:aws:sqs:us-east-1:1:q"})

# -- TW-AGENT-001: own service account, own role ---------------------------------------------------------
write("TW-AGENT-001", {"fx-agents": {
    ("kubernetes_manifest", "pass_own"): agent("own"), **role("role_own"), **identity("own", "team-a", "agent-own", "role_own"),
    ("kubernetes_manifest", "fail_default_sa"): agent("lazy", sa=False),
    ("kubernetes_manifest", "fail_shared_sa"): agent("borrow", sa="worker"),
    ("kubernetes_manifest", "worker"): k8s({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "worker", "namespace": "team-a"},
                                            "spec": {"selector": {"matchLabels": {"app": "w"}}, "template": {
                                                "metadata": {"labels": {"app": "w"}}, "spec": {"serviceAccountName": "worker", "containers": []}}}}),
    ("kubernetes_manifest", "fail_no_identity"): agent("orphan"),
    ("kubernetes_manifest", "fail_shared_role"): agent("twin"), **role("role_shared"),
    **identity("twin", "team-a", "agent-twin", "role_shared"), **identity("other", "team-b", "reporter", "role_shared"),
}})

# -- TW-AGENT-002: models only through the router --------------------------------------------------------
VLLM = {"app.kubernetes.io/name": "vllm-llama", "app.kubernetes.io/component": "model-server"}
write("TW-AGENT-002", {"fx-serving": {
    ("kubernetes_manifest", "vllm"): k8s({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {
        "name": "vllm-llama", "namespace": "tierwise-serving", "labels": VLLM}, "spec": {"selector": {"matchLabels": VLLM}, "template": {
            "metadata": {"labels": VLLM}, "spec": {"containers": [{"name": "vllm", "image": "v:1", "ports": [{"containerPort": 8000}]}]}}}}),
}, "fx-agents": {
    ("kubernetes_manifest", "pass_router_only"): agent("good"), **role("role_good"),
    **identity("good", "team-a", "agent-good", "role_good", QUEUE), ("kubernetes_manifest", "np_good"): agent_egress("good"),
    ("kubernetes_manifest", "fail_bedrock_action"): agent("direct"), **role("role_direct"),
    **identity("direct", "team-a", "agent-direct", "role_direct", pol(
        {"Sid": "ToolSummarize", "Effect": "Allow", "Action": ["bedrock:InvokeModel"],
         "Resource": "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0"})),
    ("kubernetes_manifest", "fail_bedrock_wildcard"): agent("wild"), **role("role_wild"),
    **identity("wild", "team-a", "agent-wild", "role_wild", pol({"Effect": "Allow", "Action": "bedrock:*", "Resource": "*"})),
    ("kubernetes_manifest", "fail_vllm_peer"): agent("sneaky"), **role("role_sneaky"),
    **identity("sneaky", "team-a", "agent-sneaky", "role_sneaky", QUEUE),
    ("kubernetes_manifest", "np_sneaky"): agent_egress("sneaky", [{"to": [pods({"app.kubernetes.io/name": "vllm-llama"}, "tierwise-serving")],
                                                                   "ports": tcp(8000)}]),
    ("kubernetes_manifest", "fail_vpc_all_ports"): agent("wide"), **role("role_wide"),
    **identity("wide", "team-a", "agent-wide", "role_wide", QUEUE),
    ("kubernetes_manifest", "np_wide"): agent_egress("wide", [{"to": [{"ipBlock": {"cidr": VPC}}]}]),
}})

# -- TW-AGENT-003: egress only to declared tools ---------------------------------------------------------
KB_DECL = (("kb-search", "tierwise-serving", KB, 8000),)
DNS = {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
               "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}], "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
write("TW-AGENT-003", {"fx-tenancy": {
    ("kubernetes_manifest", "deny"): netpol("default-deny", "team-a", None, []),
    ("kubernetes_manifest", "dns"): netpol("allow-dns", "team-a", None, [DNS]),
    ("kubernetes_manifest", "team_router"): netpol("allow-tierwise-router", "team-a", None,
                                                   [{"to": [pods(ROUTER, "tierwise-serving")], "ports": tcp(8080)}]),
}, "fx-agents": {
    ("kubernetes_manifest", "pass_declared"): agent("good", services=KB_DECL, fqdns=["pypi.org"]),
    ("kubernetes_manifest", "np_good"): agent_egress("good", [{"to": [pods(KB, "tierwise-serving")], "ports": tcp(8000)}]),
    ("kubernetes_manifest", "fail_undeclared_service"): agent("extra"),
    ("kubernetes_manifest", "np_extra"): agent_egress("extra", [{"to": [pods(KB, "tierwise-serving")], "ports": tcp(8000)}]),
    ("kubernetes_manifest", "fail_any_destination"): agent("open", services=KB_DECL),
    ("kubernetes_manifest", "np_open"): agent_egress("open", [{"ports": tcp(443)}]),
    ("kubernetes_manifest", "fail_whole_namespace"): agent("nsw", services=KB_DECL),
    ("kubernetes_manifest", "np_nsw"): agent_egress("nsw", [{"to": [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "tierwise-serving"}}}], "ports": tcp(8000)}]),
    ("kubernetes_manifest", "fail_no_declaration"): agent("silent", annotation=False),
    ("kubernetes_manifest", "np_silent"): agent_egress("silent"),
    ("kubernetes_manifest", "fail_hand_added_policy"): agent("patched", services=KB_DECL),
    ("kubernetes_manifest", "np_patched"): agent_egress("patched", [{"to": [pods(KB, "tierwise-serving")], "ports": tcp(8000)}]),
    ("kubernetes_manifest", "np_patched_extra"): netpol("debug-egress", "team-a", {"tierwise.io/agent": "patched"},
                                                        [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}], "ports": tcp(5432)}]),
}})
