"""Derive the allowed network graph from the synthesized NetworkPolicies and compare it with the
intended one: clients → router; router → vLLM (or the inference Gateway → its pickers → vLLM), RAG, guardrails,
Valkey, the Bedrock endpoint, S3 (ledger);
RAG → Qdrant and S3; guardrails → SQS and S3; metrics scrapes from the monitoring namespace; nothing else.

A flow between two namespaces that deny by default is allowed only when the source's egress *and* the
destination's ingress allow it; a flow from an ungoverned peer (monitoring) needs the ingress side, a
flow to an address block needs the egress side.
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.synth

NS = "tierwise-serving"
QDRANT = {"app.kubernetes.io/name": "qdrant", "app.kubernetes.io/instance": "qdrant"}  # labels of the Helm chart's pods
PRIVATE = "public-internet"  # 0.0.0.0/0 minus private and link-local ranges
DNS = "dns"


GATEWAY_NS = "nginx-gateway"
CONTROLLER = {"app.kubernetes.io/name": "nginx-gateway-fabric", "app.kubernetes.io/instance": "nginx-gateway"}


def _pods(s: Any) -> dict[str, dict[str, str]]:
    """Serving workload name -> pod labels (from the synthesized pod templates, plus the charts' pods: Qdrant, and
    with the inference Gateway its NGINX data plane and each model's endpoint picker)."""
    out = {"qdrant": QDRANT}
    if s.env.serving.inference_gateway.enabled:
        out["inference-gateway"] = {"gateway.networking.k8s.io/gateway-name": "inference-gateway"}
        out |= {f"picker-{m.name}": {"inferencepool": f"{m.name}-epp"} for m in s.env.models}
    for o in s.objects():
        if o["kind"] == "Deployment":
            out[o["metadata"]["name"]] = o["spec"]["template"]["metadata"]["labels"]
        elif o["kind"] == "LeaderWorkerSet":
            out[o["metadata"]["name"]] = o["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["metadata"]["labels"]
    return out


def _matches(selector: dict, lbls: dict[str, str]) -> bool:
    return all(lbls.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _resolve(peer: dict, own_ns: str, pods: dict[str, dict[str, str]], vpc: str) -> set[str]:
    if "ipBlock" in peer:
        b = peer["ipBlock"]
        if b["cidr"] == "0.0.0.0/0":
            assert set(b.get("except", [])) >= {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"}, b
            return {PRIVATE}
        return {"vpc" if b["cidr"] == vpc else f"cidr:{b['cidr']}"}
    nsel = peer.get("namespaceSelector")
    if nsel is not None:
        names: list[str] = []
        for e in nsel.get("matchExpressions", []):
            assert e["key"] == "kubernetes.io/metadata.name" and e["operator"] == "In", e
            names += e["values"]
        if "kubernetes.io/metadata.name" in nsel.get("matchLabels", {}):
            names.append(nsel["matchLabels"]["kubernetes.io/metadata.name"])
        assert names, f"namespace selector matches by name only: {nsel}"
        if "podSelector" not in peer:
            return {f"ns:{n}" for n in names}
        if names == ["kube-system"] and peer["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}:
            return {DNS}
        if names == [GATEWAY_NS] and peer["podSelector"] == {"matchLabels": CONTROLLER}:
            return {"gateway-controller"}
        assert names == [NS], peer
        own_ns = NS
    psel = peer["podSelector"]
    assert own_ns == NS and psel.get("matchLabels"), f"pod peers are serving pods selected by label: {peer}"
    return {name for name, lbls in pods.items() if _matches(psel, lbls)}


def _ports(rule: dict) -> list[str]:
    return [f"{p['port']}" + (f"-{p['endPort']}" if "endPort" in p else "") + ("/udp" if p["protocol"] == "UDP" else "")
            for p in rule["ports"]]


def derive(s: Any) -> tuple[set[tuple[str, str, str]], set[str]]:
    pods = _pods(s)
    vpc = s.env.network.vpc_cidr
    egress: set[tuple[str, str, str]] = set()
    ingress: set[tuple[str, str, str]] = set()
    # team namespaces (and their default deny) come from the tenancy stack
    denied_ns = {o["metadata"]["namespace"] for o in s.objects("NetworkPolicy", stack=f"{s.env.name}-tenancy")
                 if o["metadata"]["name"] == "default-deny" and o["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}
    for o in s.objects("NetworkPolicy"):
        ns = o["metadata"]["namespace"]
        spec = o["spec"]
        if o["metadata"]["name"] == "default-deny":
            assert spec == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
            denied_ns.add(ns)
            continue
        if ns == NS:
            selected = {n for n, lbls in pods.items() if _matches(spec["podSelector"], lbls)} if spec["podSelector"] else set(pods)
        elif ns == GATEWAY_NS and spec["podSelector"]:
            assert spec["podSelector"] == {"matchLabels": CONTROLLER}, spec
            selected = {"gateway-controller"}
        else:
            assert spec["podSelector"] == {}, "outside the serving namespace only whole-namespace client policies"
            selected = {f"ns:{ns}"}
        assert selected, f"{ns}/{o['metadata']['name']} selects no pods"
        for rule in spec.get("egress", []):
            for peer in rule["to"]:
                for dst in _resolve(peer, ns, pods, vpc):
                    egress |= {(src, dst, port) for src in selected for port in _ports(rule)}
        for rule in spec.get("ingress", []):
            for peer in rule["from"]:
                for src in _resolve(peer, ns, pods, vpc):
                    ingress |= {(src, dst, port) for dst in selected for port in _ports(rule)}
    governed = set(pods) | {f"ns:{n}" for n in denied_ns} | ({"gateway-controller"} if GATEWAY_NS in denied_ns else set())
    flows = set()
    for src, dst, port in egress | ingress:
        src_ok = src not in governed or (src, dst, port) in egress
        dst_ok = dst not in governed or (src, dst, port) in ingress
        if src_ok and dst_ok:
            flows.add((src, dst, port))
    return flows, denied_ns


def intended(s: Any) -> set[tuple[str, str, str]]:
    env = s.env
    models = [f"vllm-{m.name}" for m in env.models]
    mon = f"ns:{env.serving.monitoring_namespace}"
    flows = {(f"ns:{ns}", "router", "8080") for ns in env.all_namespaces}
    flows |= {(mon, "router", "8080"), (mon, "rag", "8080"), (mon, "guardrails", "8080"), (mon, "qdrant", "6333")}
    flows |= {(mon, m, "8000") for m in models}
    flows |= {("router", m, "8000") for m in models}
    flows |= {("router", "rag", "8080"), ("router", "guardrails", "8080"), ("router", "vpc", "6379"), ("router", "vpc", "443")}
    flows.add(("router", PRIVATE, "443"))  # the usage ledger's segments to S3 (gateway endpoint)
    if env.serving.inference_gateway.enabled:
        # router -> Gateway -> (picker decides) -> model servers; pickers read the servers' metrics and the API server
        flows |= {("router", "inference-gateway", "80"), ("inference-gateway", "gateway-controller", "8443"),
                  ("gateway-controller", "vpc", "443")}
        for m in env.models:
            flows |= {("inference-gateway", f"vllm-{m.name}", "8000"), ("inference-gateway", f"picker-{m.name}", "9002"),
                      (f"picker-{m.name}", f"vllm-{m.name}", "8000"), (f"picker-{m.name}", "vpc", "443")}
    flows |= {("rag", "qdrant", "6333"), ("rag", "qdrant", "6334"), ("rag", "vpc", "443"), ("rag", PRIVATE, "443")}
    flows |= {("guardrails", "vpc", "443"), ("guardrails", PRIVATE, "443")}
    flows |= {(svc, "cidr:169.254.170.23/32", "80") for svc in ("router", "rag", "guardrails")}
    if env.serving.qdrant_replicas > 1:
        flows.add(("qdrant", "qdrant", "6335"))
    return flows


def test_network_graph_is_exactly_the_intended_one(synth: Any) -> None:
    flows, _ = derive(synth)
    flows = {f for f in flows if f[1] != DNS}
    want = intended(synth)
    assert sorted(flows - want) == [], "flows allowed that nobody intended"
    assert sorted(want - flows) == [], "intended flows the policies do not allow"


def test_serving_namespace_denies_by_default_and_allows_dns(synth: Any) -> None:
    flows, denied = derive(synth)
    assert NS in denied and set(synth.env.all_namespaces) <= denied
    pods = _pods(synth)
    gateway_ns = {f"ns:{GATEWAY_NS}"} if synth.env.serving.inference_gateway.enabled else set()
    if gateway_ns:
        assert GATEWAY_NS in denied, "the Gateway controller's namespace denies by default too"
    assert {src for src, dst, port in flows if dst == DNS and port == "53/udp"} == set(pods) | gateway_ns


def test_model_servers_reach_nothing_but_dns(synth: Any) -> None:
    flows, _ = derive(synth)
    for m in synth.env.models:
        out = {(dst, port) for src, dst, port in flows if src == f"vllm-{m.name}" and dst != DNS}
        assert out == set(), f"vllm-{m.name} has egress {out}: weights come through the Mountpoint CSI driver"
