"""Issue 14 (cluster side): the inference Gateway, per model an InferencePool with its endpoint picker, HTTPRoutes,
and model-version canaries as route weights with a rollback target the gate checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tierwise.config import ConfigError, load_environment

REPO = Path(__file__).resolve().parents[2]


def _releases(synth: Any, chart: str) -> list[dict]:
    return [r for r in synth.resources("helm_release").values() if r["chart"] == chart]


def test_prod_has_one_gateway_a_pool_and_picker_per_model_and_a_route_each(synths: dict) -> None:
    s = synths["prod"]
    [ngf] = _releases(s, "nginx-gateway-fabric")
    values = json.loads(ngf["values"][0])
    assert values["nginxGateway"]["gwAPIInferenceExtension"] == {"enable": True}
    registry = f"{s.env.account_id}.dkr.ecr.{s.env.region}.amazonaws.com/ghcr/nginx/"
    assert values["nginxGateway"]["image"]["repository"] == registry + "nginx-gateway-fabric"
    [gw] = s.objects("Gateway")
    assert gw["spec"]["gatewayClassName"] == values["nginxGateway"]["gatewayClassName"]
    pools = {r["name"]: json.loads(r["values"][0]) for r in _releases(s, "inferencepool")}
    assert set(pools) == {m.name for m in s.env.models}
    deployments = {o["metadata"]["name"]: o for o in s.objects() if o["kind"] in ("Deployment", "LeaderWorkerSet")}
    for name, v in pools.items():
        assert v["inferencePool"]["modelServerType"] == "vllm" and v["provider"] == {"name": "none"}
        sel = v["inferencePool"]["modelServers"]["matchLabels"]
        selected = [d for d, o in deployments.items() if all(
            (o["spec"].get("template") or o["spec"]["leaderWorkerTemplate"]["leaderTemplate"])["metadata"]["labels"].get(k) == val
            for k, val in sel.items() if not k.startswith("leaderworkerset"))]
        assert selected == [f"vllm-{name}"], (name, selected)  # exactly this model's servers
        assert v["inferenceExtension"]["image"]["registry"].endswith(".amazonaws.com")
    routes = {o["metadata"]["name"]: o for o in s.objects("HTTPRoute")}
    assert set(routes) == set(pools)
    for name, r in routes.items():
        [rule] = r["spec"]["rules"]
        assert rule["matches"] == [{"headers": [{"type": "Exact", "name": "X-Gateway-Model-Name", "value": name}]}]
        assert rule["backendRefs"] == [{"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": name,
                                        "weight": 100}]
    assert [o for o in s.objects("PodDisruptionBudget") if o["metadata"]["name"] == "inference-gateway"]
    # the router's Tier-1 upstream is the Gateway's Service (NGF names it <gateway>-<gatewayclass>)
    base = json.loads(next(v for v in s.object("ConfigMap", "router")["data"].values() if '"routing"' in v))
    assert base["routing"]["gateway_url"] == (f"http://{gw['metadata']['name']}-{gw['spec']['gatewayClassName']}"
                                              f".{gw['metadata']['namespace']}.svc:80")


def test_dev_keeps_the_routers_own_balancer(synths: dict) -> None:
    s = synths["dev"]
    assert not _releases(s, "inferencepool") and not s.objects("HTTPRoute") and not s.objects("Gateway")
    base = json.loads(next(v for v in s.object("ConfigMap", "router")["data"].values() if '"routing"' in v))
    assert "gateway_url" not in base["routing"]


def _prod_with_canary(tmp_path: Path, weight: int = 10) -> Path:
    d = yaml.safe_load((REPO / "environments" / "prod.yaml").read_text())
    stable = next(m for m in d["models"] if m["name"] == "llama-8b")
    canary = {**stable, "name": "llama-8b-v2", "source": "meta-llama/Llama-3.1-8B-Instruct-v2",
              "canary": {"of": "llama-8b", "weight": weight}}
    d["models"].append(canary)
    f = tmp_path / "prod.yaml"
    f.write_text(yaml.safe_dump(d, sort_keys=False))
    return f


@pytest.mark.synth
def test_declared_canary_becomes_route_weights_and_losing_its_rollback_target_fails_the_gate(tmp_path) -> None:
    from tierwise.app import synth
    from tierwise.policies.catalog import by_id
    from tierwise.policies.engine import FAIL, PASS, load_index, run_checks

    out = tmp_path / "out"
    synth(load_environment(_prod_with_canary(tmp_path)), out)
    doc = json.loads((out / "stacks" / "prod-serving" / "cdk.tf.json").read_text())
    objs = {r["manifest"]["kind"] + "/" + r["manifest"]["metadata"]["name"]: (k, r)
            for k, r in doc["resource"]["kubernetes_manifest"].items()}
    key, route = objs["HTTPRoute/llama-8b"]
    assert [(b["name"], b["weight"]) for b in route["manifest"]["spec"]["rules"][0]["backendRefs"]] == [
        ("llama-8b", 90), ("llama-8b-v2", 10)]
    assert route["manifest"]["metadata"]["annotations"] == {"tierwise.io/canary": "llama-8b-v2",
                                                            "tierwise.io/rollback-target": "llama-8b"}
    assert "HTTPRoute/llama-8b-v2" not in objs  # reachable under the stable name only
    server = objs["Deployment/vllm-llama-8b-v2"][1]["manifest"]
    args = server["spec"]["template"]["spec"]["containers"][0]["args"]
    i = args.index("--served-model-name")
    assert args[i + 1:i + 3] == ["llama-8b-v2", "llama-8b"]

    check = by_id()["TW-DEPLOY-005"]
    statuses = {r.status for r in run_checks(load_index(out), [check()])}
    assert statuses == {PASS}
    # remove the rollback target from the route: the gate must block
    rule = route["manifest"]["spec"]["rules"][0]
    rule["backendRefs"] = [dict(rule["backendRefs"][1], weight=100)]
    doc["resource"]["kubernetes_manifest"][key] = route
    (out / "stacks" / "prod-serving" / "cdk.tf.json").write_text(json.dumps(doc))
    failed = [r for r in run_checks(load_index(out), [check()]) if r.status == FAIL]
    assert failed and "rollback target 'llama-8b'" in failed[0].message


def test_canary_needs_the_gateway_and_a_stable_target(tmp_path) -> None:
    f = _prod_with_canary(tmp_path)
    d = yaml.safe_load(f.read_text())
    d["serving"]["inference_gateway"]["enabled"] = False
    f.write_text(yaml.safe_dump(d, sort_keys=False))
    with pytest.raises(ConfigError, match="canaries are split by the inference Gateway"):
        load_environment(f)
    d["serving"]["inference_gateway"]["enabled"] = True
    d["models"][-1]["canary"]["of"] = "nope"
    f.write_text(yaml.safe_dump(d, sort_keys=False))
    with pytest.raises(ConfigError, match="must name another catalog model"):
        load_environment(f)
