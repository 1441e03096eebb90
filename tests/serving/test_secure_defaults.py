"""Secure defaults of the serving constructs, as synthesized: restricted pods with limits, versioned,
logged, lifecycle-managed buckets with events, and an authenticated, encrypted Valkey. The policy gate
(checkov) asks for the same; these tests pin the shape so a regression shows up without checkov."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = pytest.mark.synth

WORKLOAD_KINDS = ("Deployment", "LeaderWorkerSet")


def _pod_specs(o: dict[str, Any]) -> list[dict[str, Any]]:
    if o["kind"] == "Deployment":
        return [o["spec"]["template"]["spec"]]
    lwt = o["spec"]["leaderWorkerTemplate"]
    return [lwt["leaderTemplate"]["spec"], lwt["workerTemplate"]["spec"]]


def test_every_serving_container_is_restricted_and_limited(synth: Any) -> None:
    workloads = [o for o in synth.objects() if o["kind"] in WORKLOAD_KINDS]
    assert workloads
    for o in workloads:
        for spec in _pod_specs(o):
            pod = spec["securityContext"]
            assert pod["runAsNonRoot"] is True and pod["runAsUser"] >= 10000 and pod["runAsGroup"] >= 10000
            assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
            for c in spec["containers"] + spec.get("initContainers", []):
                where = f"{o['metadata']['name']}/{c['name']}"
                sc = c["securityContext"]
                assert sc["runAsNonRoot"] is True and sc["runAsUser"] >= 10000, where
                assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False, where
                assert sc["readOnlyRootFilesystem"] is True, where
                assert sc["capabilities"] == {"drop": ["ALL"]}, where
                assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
                assert c["imagePullPolicy"] == "Always", where
                lim, req = c["resources"]["limits"], c["resources"]["requests"]
                assert lim["cpu"] and lim["memory"] == req["memory"], where


def test_cpu_limit_defaults_to_the_request(synth: Any) -> None:
    for name in ("router", "rag", "guardrails"):
        [c] = synth.object("Deployment", name)["spec"]["template"]["spec"]["containers"]
        assert c["resources"]["limits"]["cpu"] == c["resources"]["requests"]["cpu"]


def test_s3_mounts_present_files_as_the_pod_user(synth: Any) -> None:
    # The volumes the serving pods actually mount (weights, adapters, drafts): derived from the workloads, so the
    # test cannot pass vacuously when no PersistentVolume is emitted or a workload mounts one that is not.
    mounted = set()
    for o in synth.objects():
        if o["kind"] not in WORKLOAD_KINDS:
            continue
        for spec in _pod_specs(o):
            for v in spec.get("volumes", []):
                if "persistentVolumeClaim" in v:
                    pvc = synth.object("PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"])
                    mounted.add(pvc["spec"]["volumeName"])
    assert mounted, "no serving workload mounts a PersistentVolume: model weights would have no source"
    pvs = {pv["metadata"]["name"]: pv for pv in synth.objects("PersistentVolume")}
    assert mounted <= set(pvs), f"mounted volumes without a PersistentVolume: {sorted(mounted - set(pvs))}"
    for name, pv in pvs.items():
        opts = pv["spec"]["mountOptions"]
        assert "uid=10001" in opts and "gid=10001" in opts, name


def _by_bucket(synth: Any, rtype: str) -> dict[str, dict[str, Any]]:
    """Resources of `rtype` keyed by the construct id of the bucket they reference (`${aws_s3_bucket.<id>.id}`)."""
    return {r["bucket"].split(".")[1]: r for r in synth.resources(rtype).values()}


def test_data_buckets_are_versioned_logged_lifecycled_and_emit_events(synth: Any) -> None:
    buckets = {b["bucket"].rsplit("-", 1)[1]: k for k, b in synth.resources("aws_s3_bucket").items()}
    data = {n: buckets[n] for n in ("models", "adapters", "knowledge", "audit", "ledger")}
    logs = buckets["logs"]
    versioning = _by_bucket(synth, "aws_s3_bucket_versioning")
    lifecycle = _by_bucket(synth, "aws_s3_bucket_lifecycle_configuration")
    logging = _by_bucket(synth, "aws_s3_bucket_logging")
    events = _by_bucket(synth, "aws_s3_bucket_notification")
    noncurrent = synth.env.serving.noncurrent_version_days
    for name, key in data.items():
        assert versioning[key]["versioning_configuration"]["status"] == "Enabled", name
        rules = {r["id"]: r for r in lifecycle[key]["rule"]}
        assert rules["abort-incomplete-multipart"]["abort_incomplete_multipart_upload"] == [{"days_after_initiation": 7}]
        if name not in ("audit", "ledger"):  # Object Lock COMPLIANCE decides how long their versions live
            assert rules["expire-noncurrent"]["noncurrent_version_expiration"] == [{"noncurrent_days": noncurrent}], name
        assert logs in logging[key]["target_bucket"] and logging[key]["target_prefix"].endswith(f"-{name}/"), name
        assert events[key]["eventbridge"] is True, name
    assert set(logging) == set(data.values()) and set(events) == set(data.values())


def test_access_log_bucket_accepts_only_the_logging_service_of_this_account(synth: Any) -> None:
    logs = next(k for k, b in synth.resources("aws_s3_bucket").items() if b["bucket"].endswith("-logs"))
    [enc] = [e for e in synth.resources("aws_s3_bucket_server_side_encryption_configuration").values() if logs in e["bucket"]]
    assert enc["rule"][0]["apply_server_side_encryption_by_default"] == {"sse_algorithm": "AES256"}
    [pol] = [p for p in synth.resources("aws_s3_bucket_policy").values() if logs in p["bucket"]]
    stmts = {s["Sid"]: s for s in json.loads(pol["policy"])["Statement"]}
    allow = stmts["S3ServerAccessLogs"]
    assert allow["Principal"] == {"Service": "logging.s3.amazonaws.com"} and allow["Action"] == "s3:PutObject"
    assert allow["Condition"] == {"StringEquals": {"aws:SourceAccount": synth.env.account_id}}
    assert stmts["DenyInsecureTransport"]["Effect"] == "Deny"
    [lc] = [x for x in synth.resources("aws_s3_bucket_lifecycle_configuration").values() if logs in x["bucket"]]
    assert lc["rule"][0]["expiration"] == [{"days": 365}]


def test_valkey_requires_tls_and_an_auth_token_read_from_a_secret_by_name(synth: Any) -> None:
    [valkey] = synth.resources("aws_elasticache_replication_group").values()
    [(key, secret)] = synth.stack["data"]["aws_secretsmanager_secret_version"].items()
    assert secret["secret_id"] == f"tierwise-{synth.env.name}/valkey-auth-token"
    assert valkey["transit_encryption_enabled"] is True and valkey["at_rest_encryption_enabled"] == "true"
    assert valkey["auth_token"] == f"${{data.aws_secretsmanager_secret_version.{key}.secret_string}}"
    assert valkey["kms_key_id"].startswith("${aws_kms_key.")
    ha = synth.env.serving.valkey_replicas > 0
    assert valkey["automatic_failover_enabled"] is ha and valkey["multi_az_enabled"] is ha


# -- construct-level: defaults and validation -----------------------------------------------------------
class _Key:
    key_arn = "arn:aws:kms:us-west-2:111111111111:key/test"


def _stack():
    from cdktn import App, TerraformStack
    from cdktn_provider_aws.provider import AwsProvider

    stack = TerraformStack(App(), "test")
    AwsProvider(stack, "aws", region="us-west-2")
    return stack


def test_data_bucket_without_a_log_bucket_creates_its_own() -> None:
    from cdktn import Testing

    from tierwise.constructs.serving.data_bucket import DataBucket, DataBucketProps

    stack = _stack()
    DataBucket(stack, "b", key=_Key(), props=DataBucketProps(name="tw-test-data"))
    doc = json.loads(Testing.synth(stack))
    names = sorted(b["bucket"] for b in doc["resource"]["aws_s3_bucket"].values())
    assert names == ["tw-test-data", "tw-test-data-logs"]
    [logging] = doc["resource"]["aws_s3_bucket_logging"].values()
    assert logging["target_prefix"] == "tw-test-data/" and "aws_s3_bucket.b_access-logs_bucket" in logging["target_bucket"]
    assert "aws_caller_identity" in doc["data"]  # SourceAccount of the logging service, resolved at plan time
    assert len(doc["resource"]["aws_s3_bucket_versioning"]) == 2  # versioned by default, and so is its log bucket
    assert len(doc["resource"]["aws_s3_bucket_notification"]) == 1  # the log bucket emits no events


def test_fails_data_bucket_with_no_multipart_abort() -> None:
    from tierwise.constructs.serving.data_bucket import DataBucket, DataBucketProps

    with pytest.raises(ValueError, match="abort_incomplete_multipart_days must be >= 1, got 0"):
        DataBucket(_stack(), "b", key=_Key(), props=DataBucketProps(name="x", abort_incomplete_multipart_days=0))


def test_fails_access_log_bucket_with_no_retention() -> None:
    from tierwise.constructs.serving.access_log_bucket import AccessLogBucket, AccessLogBucketProps

    with pytest.raises(ValueError, match="retention_days must be >= 1, got 0"):
        AccessLogBucket(_stack(), "l", props=AccessLogBucketProps(name="x", account_id="111111111111", retention_days=0))


@pytest.mark.parametrize("helper", ["pod_security", "container_security"])
def test_fails_pod_defaults_with_a_low_uid(helper: str) -> None:
    from tierwise.constructs.serving import pod_defaults

    with pytest.raises(ValueError, match="uid must be >= 10000"):
        getattr(pod_defaults, helper)(uid=1000)


def test_resources_helper_sets_guaranteed_limits() -> None:
    from tierwise.constructs.serving.pod_defaults import resources

    assert resources("500m", "1Gi") == {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "500m", "memory": "1Gi"}}
    assert resources("1", "2Gi", "2", **{"nvidia.com/gpu": 1})["limits"] == {"cpu": "2", "memory": "2Gi", "nvidia.com/gpu": 1}
