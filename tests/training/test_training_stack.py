"""What each `training.pipelines` entry synthesizes into (dev and prod): its identity with exactly the README §6
actions, the suspended Kueue-admitted CronJob, its GPU unit, volumes, steps and NetworkPolicy."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tierwise.config.training import dataset_prefix, mig_profile, pipeline_namespace
from tierwise.constructs.capacity.mig_claim_template import claim_template_name

pytestmark = pytest.mark.synth

WRITE_ACTIONS = {"s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectAcl", "s3:PutBucketPolicy"}


def _ref_name(value: str) -> str:
    """`${aws_iam_role.x.arn}` -> `x`."""
    return value[2:-1].split(".")[1]


def _cron_job(out, p) -> dict[str, Any]:
    return out.object("CronJob", f"train-{p.name}", pipeline_namespace(out.env, p))


def _pod(out, p) -> dict[str, Any]:
    return _cron_job(out, p)["spec"]["jobTemplate"]["spec"]["template"]


def _model(out, p):
    return next(m for m in out.env.models if m.name == p.model)


def test_every_environment_declares_a_pipeline(out) -> None:
    assert out.env.training.pipelines, "dev and prod each ship one adapter-training pipeline"


# -- identity -----------------------------------------------------------------------------------------------
def _binding(out, p) -> tuple[dict, list[dict]]:
    sa = f"train-{p.name}"
    assocs = [a for a in out.resources("aws_eks_pod_identity_association").values() if a["service_account"] == sa]
    assert len(assocs) == 1, f"{sa}: {len(assocs)} pod identity associations"
    [a] = assocs
    assert a["namespace"] == pipeline_namespace(out.env, p)
    role_id = _ref_name(a["role_arn"])
    role = out.resources("aws_iam_role")[role_id]
    policies = [json.loads(x["policy"]) for x in out.resources("aws_iam_role_policy").values() if _ref_name(x["role"]) == role_id]
    assert len(policies) == 1
    return role, policies[0]["Statement"]


def _split(out, resource: str) -> tuple[str, str]:
    """A resource ARN read from the serving stack -> (serving expression, key suffix)."""
    token, _, suffix = resource.partition("}/")
    return out.serving_ref(token + "}"), suffix


def test_each_pipeline_has_its_own_role_trusted_only_by_pod_identity(out) -> None:
    roles = set()
    for p in out.env.training.pipelines:
        role, _ = _binding(out, p)
        assert [s["Principal"] for s in json.loads(role["assume_role_policy"])["Statement"]] == [
            {"Service": "pods.eks.amazonaws.com"}]
        assert role["name"] == f"tierwise-{out.env.name}-train-{p.name}" and role["tags"]["team"] == p.team
        roles.add(role["name"])
        sa = out.object("ServiceAccount", f"train-{p.name}", pipeline_namespace(out.env, p))
        assert sa["automountServiceAccountToken"] is False
        assert _pod(out, p)["spec"]["serviceAccountName"] == f"train-{p.name}"
    assert len(roles) == len(out.env.training.pipelines)
    assert len(out.resources("aws_iam_role")) == len(roles)  # no other role in the layer


def test_identity_grants_exactly_the_readme_actions_on_exactly_its_prefixes(out) -> None:
    for p in out.env.training.pipelines:
        _, statements = _binding(out, p)
        by_sid = {s["Sid"]: s for s in statements}
        assert set(by_sid) == {"WeightsRead", "WeightsList", "WeightsDecrypt", "DatasetRead", "DatasetList",
                               "DatasetDecrypt", "AdaptersReadWrite", "AdaptersList", "AdaptersKms"}
        for s in statements:
            assert s["Effect"] == "Allow" and "*" not in s["Resource"]
        actions = {sid: sorted(s["Action"]) for sid, s in by_sid.items()}
        assert actions == {
            "WeightsRead": ["s3:GetObject"], "WeightsList": ["s3:ListBucket"], "WeightsDecrypt": ["kms:Decrypt"],
            "DatasetRead": ["s3:GetObject"], "DatasetList": ["s3:ListBucket"], "DatasetDecrypt": ["kms:Decrypt"],
            "AdaptersReadWrite": ["s3:GetObject", "s3:PutObject"], "AdaptersList": ["s3:ListBucket"],
            "AdaptersKms": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]}
        assert not {a for s in statements for a in s["Action"]} & WRITE_ACTIONS  # no delete: versions are immutable

        models = re.compile(r"^\$\{aws_s3_bucket\.models-bucket_[0-9A-F]+\.arn\}$")
        adapters = re.compile(r"^\$\{aws_s3_bucket\.adapters-bucket_[0-9A-F]+\.arn\}$")
        key = re.compile(r"^\$\{aws_kms_key\.serving-key_[0-9A-F]+\.arn\}$")
        source, data = _model(out, p).source, dataset_prefix(out.env, p)
        for sid, prefix in (("Weights", source), ("Dataset", data)):
            [(bucket, suffix)] = [_split(out, r) for r in by_sid[f"{sid}Read"]["Resource"]]
            assert models.match(bucket) and suffix == f"{prefix}/*"
            [lst] = by_sid[f"{sid}List"]["Resource"]
            assert models.match(out.serving_ref(lst))
            assert by_sid[f"{sid}List"]["Condition"] == {"StringLike": {"s3:prefix": [f"{prefix}/", f"{prefix}/*"]}}
        rw = [_split(out, r) for r in by_sid["AdaptersReadWrite"]["Resource"]]
        assert all(adapters.match(b) for b, _ in rw)
        assert sorted(s for _, s in rw) == sorted([f"_training/{p.name}/*", f"{p.model}/{p.adapter}/*"])
        assert adapters.match(out.serving_ref(by_sid["AdaptersList"]["Resource"][0]))
        assert by_sid["AdaptersList"]["Condition"]["StringLike"]["s3:prefix"] == sorted(
            [f"_training/{p.name}/", f"_training/{p.name}/*", f"{p.model}/{p.adapter}/", f"{p.model}/{p.adapter}/*"])
        for sid in ("WeightsDecrypt", "DatasetDecrypt", "AdaptersKms"):
            assert [key.match(out.serving_ref(r)) is not None for r in by_sid[sid]["Resource"]] == [True]


# -- the Job template -----------------------------------------------------------------------------------------
def test_cron_job_is_a_suspended_kueue_job_template(out) -> None:
    tenancy_queues = {(q["metadata"]["namespace"], q["metadata"]["name"]) for q in out.objects("LocalQueue", "tenancy")}
    for p in out.env.training.pipelines:
        cj = _cron_job(out, p)
        assert cj["apiVersion"] == "batch/v1" and cj["spec"]["suspend"] is True
        assert cj["spec"]["concurrencyPolicy"] == "Forbid"
        tmpl = cj["spec"]["jobTemplate"]
        queue = tmpl["metadata"]["labels"]["kueue.x-k8s.io/queue-name"]
        assert queue == p.team and (pipeline_namespace(out.env, p), queue) in tenancy_queues
        spec = tmpl["spec"]
        assert spec["suspend"] is True  # Kueue unsuspends it on admission
        assert spec["backoffLimit"] == p.backoff_limit
        assert spec["activeDeadlineSeconds"] == p.max_runtime_hours * 3600
        assert spec["ttlSecondsAfterFinished"] == p.keep_finished_hours * 3600
        rules = spec["podFailurePolicy"]["rules"]
        assert rules[0] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
        assert rules[1]["action"] == "FailJob" and rules[1]["onExitCodes"]["values"] == [2]
        assert spec["template"]["spec"]["restartPolicy"] == "Never"  # podFailurePolicy requires it


def test_gpu_request_matches_the_pool_and_fits_the_teams_quota(out) -> None:
    cluster_queues = {q["metadata"]["name"]: q for q in out.objects("ClusterQueue", "tenancy")}
    for p in out.env.training.pipelines:
        pool, ns = out.env.pool(p.pool), pipeline_namespace(out.env, p)
        pod = _pod(out, p)["spec"]
        [c] = pod["containers"]
        res = c["resources"]
        if pool.sharing.mode == "mig":
            profile = mig_profile(p, pool)
            assert pod["resourceClaims"] == [{"name": "mig", "resourceClaimTemplateName": claim_template_name(profile)}]
            assert res["claims"] == [{"name": "mig"}] and "nvidia.com/gpu" not in res["limits"]
            rct = out.object("ResourceClaimTemplate", claim_template_name(profile), ns)
            [req] = rct["spec"]["spec"]["devices"]["requests"]
            assert req["exactly"]["count"] == 1 and f'"{profile}"' in req["exactly"]["selectors"][0]["cel"]["expression"]
            resource = "tierwise.io/mig-slices"
        else:  # a whole GPU, or one time-sliced share: both are one nvidia.com/gpu
            assert res["limits"]["nvidia.com/gpu"] == res["requests"]["nvidia.com/gpu"] == 1 and "resourceClaims" not in pod
            resource = "nvidia.com/gpu"
        flavors = [f for g in cluster_queues[p.team]["spec"]["resourceGroups"] if resource in g["coveredResources"]
                   for f in g["flavors"] if f["name"] == p.pool]
        [flavor] = flavors
        quota = {r["name"]: r["nominalQuota"] for r in flavor["resources"]}
        assert quota[resource] >= 1
        assert int(res["requests"]["cpu"]) <= quota["cpu"]
        assert int(res["requests"]["memory"].removesuffix("Gi")) <= int(quota["memory"].removesuffix("Gi"))


def test_pod_runs_on_spot_nodes_of_its_pool_with_restricted_security(out) -> None:
    for p in out.env.training.pipelines:
        tmpl = _pod(out, p)
        pod = tmpl["spec"]
        [term] = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert {e["key"]: e["values"] for e in term["matchExpressions"]} == {
            "tierwise.io/pool": [p.pool], "karpenter.sh/capacity-type": ["spot"]}
        assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in pod["tolerations"]
        assert tmpl["metadata"]["annotations"] == {"karpenter.sh/do-not-disrupt": "true"}
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] >= 10000
        assert pod["automountServiceAccountToken"] is False
        [c] = pod["containers"]
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"] and sc["capabilities"] == {"drop": ["ALL"]}
        assert c["imagePullPolicy"] == "Always"
        assert c["resources"]["limits"]["memory"] == c["resources"]["requests"]["memory"]


def test_pod_runs_the_four_readme_steps_with_resumable_checkpoints(out) -> None:
    for p in out.env.training.pipelines:
        pod = _pod(out, p)["spec"]
        [c] = pod["containers"]
        ns = pipeline_namespace(out.env, p)
        env = {e["name"]: e for e in c["env"]}
        # the run id is the Job's name: every pod of one run (retries too) shares its checkpoint prefix
        assert env["RUN_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}}
        assert out.serving_ref(env["ADAPTERS_BUCKET"]["value"]).startswith("${aws_s3_bucket.adapters-bucket_")
        registry = env["TIERWISE_DISTILL_REGISTRY_URL"]["value"]
        assert registry.startswith("s3://${data.terraform_remote_state.") and registry.endswith(f"}}/{p.model}")
        assert env["TIERWISE_DISTILL_MAX_RANK"]["value"] == str(_model(out, p).max_lora_rank)
        script = c["args"][0]
        assert "${" not in script  # Terraform would read a shell `${VAR}` as its own interpolation
        data = f"/data/{p.dataset_id}"
        steps = [
            f"tierwise-adapters train /config/train.json {data} /work/run --checkpoint-url \"$checkpoints\"",
            f"tierwise-adapters gate /models/base /work/run/adapter {data} /work/gate.json --production {p.adapter}@prod",
            f"exec tierwise-adapters publish {p.adapter} /work/run/adapter --train-summary /work/run/train_summary.json",
        ]
        at = [script.index(s) for s in steps]
        assert at == sorted(at), "train, gate, publish in order"
        assert f'checkpoints="s3://$ADAPTERS_BUCKET/_training/{p.name}/$RUN_ID"' in script
        assert 'if [ "$rc" -eq 2 ]; then' in script and "exit 0" in script  # gate refusal: success, nothing published
        # step 1: the weights and the pinned dataset are read-only S3 mounts with the pod's own credentials
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        vols = {v["name"]: v for v in pod["volumes"]}
        for vol, path, prefix in (("weights", "/models/base", _model(out, p).source),
                                  ("dataset", data, dataset_prefix(out.env, p))):
            assert mounts[vol]["mountPath"] == path and mounts[vol]["readOnly"] is True
            claim = vols[vol]["persistentVolumeClaim"]["claimName"]
            pvc = out.object("PersistentVolumeClaim", claim, ns)
            pv = out.object("PersistentVolume", pvc["spec"]["volumeName"], None)
            assert f"prefix {prefix}/" in pv["spec"]["mountOptions"] and "read-only" in pv["spec"]["mountOptions"]
            assert pv["spec"]["csi"]["volumeAttributes"]["authenticationSource"] == "pod"
        cfg = json.loads(out.object("ConfigMap", f"train-{p.name}", ns)["data"]["train.json"])
        rank = next(a.rank for a in _model(out, p).lora_adapters if a.name == p.adapter)
        assert (cfg["base_model"], cfg["method"], cfg["rank"], cfg["max_steps"]) == ("/models/base", p.method, rank, p.max_steps)


def test_image_comes_from_an_immutable_scanned_ecr_repository(out) -> None:
    [repo_id] = out.resources("aws_ecr_repository")
    repo = out.resources("aws_ecr_repository")[repo_id]
    assert repo["name"] == "tierwise/distill-train" and repo["image_tag_mutability"] == "IMMUTABLE"
    assert repo["image_scanning_configuration"]["scan_on_push"] is True
    for p in out.env.training.pipelines:
        [c] = _pod(out, p)["spec"]["containers"]
        assert c["image"] == f"${{aws_ecr_repository.{repo_id}.repository_url}}:{out.env.training.image_tag}"


def test_network_policy_allows_only_dns_aws_endpoints_and_pod_identity(out) -> None:
    vpc = out.env.network.vpc_cidr
    for p in out.env.training.pipelines:
        ns = pipeline_namespace(out.env, p)
        pol = out.object("NetworkPolicy", f"train-{p.name}", ns)
        labels = _pod(out, p)["metadata"]["labels"]
        assert pol["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
        assert pol["spec"]["policyTypes"] == ["Egress"] and "ingress" not in pol["spec"]  # ingress stays denied
        got = [(json.dumps(r["to"], sort_keys=True), sorted((x["protocol"], x["port"]) for x in r["ports"]))
               for r in pol["spec"]["egress"]]
        dns = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}]
        public = [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                                "169.254.0.0/16"]}}]
        assert got == [
            (json.dumps(dns, sort_keys=True), [("TCP", 53), ("UDP", 53)]),
            (json.dumps([{"ipBlock": {"cidr": vpc}}], sort_keys=True), [("TCP", 443)]),
            (json.dumps(public, sort_keys=True), [("TCP", 443)]),
            (json.dumps([{"ipBlock": {"cidr": "169.254.170.23/32"}}], sort_keys=True), [("TCP", 80)]),
        ]
        # the team namespace denies everything else by default (tenancy)
        deny = out.object("NetworkPolicy", "default-deny", ns, layer="tenancy")
        assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
