"""The router's durable usage ledger (workloads/router/tierwise_router/shipper.py): its bucket is
versioned, object-locked, KMS-encrypted and expires after the audit retention; the router's Pod
Identity role may add objects under exactly its ledger prefix and do nothing else there; the router's
environment carries the sink settings the role and bucket were made for."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tierwise.stacks.serving import LEDGER_PREFIX

PREFIX_ENV = "TIERWISE_ROUTER_LEDGER_S3_"


def _ledger_bucket(s: Any) -> tuple[str, dict]:
    [(rid, b)] = [(k, v) for k, v in s.resources("aws_s3_bucket").items() if v["bucket"].endswith("-ledger")]
    assert b["bucket"] == f"tierwise-{s.env.name}-{s.env.account_id}-ledger"
    return rid, b


def _for_bucket(s: Any, rtype: str, rid: str) -> dict:
    [r] = [v for v in s.resources(rtype).values() if v["bucket"] == f"${{aws_s3_bucket.{rid}.id}}"]
    return r


def _router_statements(s: Any) -> list[dict]:
    [a] = [a for a in s.resources("aws_eks_pod_identity_association").values() if a["service_account"] == "router"]
    role = a["role_arn"][2:-1].split(".")[1]
    [pol] = [p for p in s.resources("aws_iam_role_policy").values() if p["role"] == f"${{aws_iam_role.{role}.name}}"
             or p["role"] == f"${{aws_iam_role.{role}.id}}"]
    return json.loads(pol["policy"])["Statement"]


@pytest.mark.synth
def test_ledger_bucket_is_versioned_locked_encrypted_and_expires(synth: Any) -> None:
    rid, b = _ledger_bucket(synth)
    days = synth.env.serving.audit_retention_days
    assert b["object_lock_enabled"] is True and b["lifecycle"]["prevent_destroy"] is synth.env.protect_stateful
    assert _for_bucket(synth, "aws_s3_bucket_versioning", rid)["versioning_configuration"]["status"] == "Enabled"
    lock = _for_bucket(synth, "aws_s3_bucket_object_lock_configuration", rid)["rule"]["default_retention"]
    assert lock == {"mode": "COMPLIANCE", "days": days}
    [sse] = _for_bucket(synth, "aws_s3_bucket_server_side_encryption_configuration", rid)["rule"]
    by_default = sse["apply_server_side_encryption_by_default"]
    assert by_default["sse_algorithm"] == "aws:kms" and by_default["kms_master_key_id"].startswith("${aws_kms_key.")
    assert _for_bucket(synth, "aws_s3_bucket_public_access_block", rid)["restrict_public_buckets"] is True
    rules = {r["id"]: r for r in _for_bucket(synth, "aws_s3_bucket_lifecycle_configuration", rid)["rule"]}
    assert rules["expire-current"]["expiration"] == [{"days": days}]
    assert rules["expire-noncurrent"]["noncurrent_version_expiration"] == [
        {"noncurrent_days": synth.env.serving.noncurrent_version_days}]


@pytest.mark.synth
def test_router_may_only_put_objects_under_its_ledger_prefix(synth: Any) -> None:
    rid, _ = _ledger_bucket(synth)
    sts = {st["Sid"]: st for st in _router_statements(synth)}
    assert sts["LedgerWrite"]["Action"] == ["s3:PutObject"]
    assert sts["LedgerWrite"]["Resource"] == [f"${{aws_s3_bucket.{rid}.arn}}/{LEDGER_PREFIX}/*"]
    assert sts["LedgerEncrypt"]["Action"] == ["kms:GenerateDataKey"]
    [key] = sts["LedgerEncrypt"]["Resource"]
    [sse] = _for_bucket(synth, "aws_s3_bucket_server_side_encryption_configuration", rid)["rule"]
    assert key == sse["apply_server_side_encryption_by_default"]["kms_master_key_id"]  # the bucket's own key
    s3 = [(a, r) for st in sts.values() for a in st["Action"] if a.startswith("s3:") for r in st["Resource"]]
    assert s3 == [("s3:PutObject", f"${{aws_s3_bucket.{rid}.arn}}/{LEDGER_PREFIX}/*")]  # no delete, no retention
    assert all(st["Effect"] == "Allow" and "Condition" not in st for st in sts.values())


@pytest.mark.synth
def test_router_env_carries_the_sink_its_role_was_made_for(synth: Any) -> None:
    rid, _ = _ledger_bucket(synth)
    dep = synth.object("Deployment", "router")
    [c] = [c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "router"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env[PREFIX_ENV + "BUCKET"] == f"${{aws_s3_bucket.{rid}.bucket}}"
    assert env[PREFIX_ENV + "PREFIX"] == LEDGER_PREFIX and env[PREFIX_ENV + "REGION"] == synth.env.region
    assert env["TIERWISE_ROUTER_LEDGER_ACK"] == "durable"
    assert env["TIERWISE_ROUTER_LEDGER_PATH"].startswith("/tmp/")
    # the local backlog bound stays under the pod's /tmp volume, so a long S3 outage gives 503s, not an eviction
    [tmp] = [v for v in dep["spec"]["template"]["spec"]["volumes"] if v.get("emptyDir") is not None
             and any(m["name"] == v["name"] and m["mountPath"] == "/tmp" for m in c["volumeMounts"])]
    limit = tmp["emptyDir"]["sizeLimit"]
    assert limit.endswith("Gi") or limit.endswith("Mi"), limit
    limit_bytes = int(limit[:-2]) << (30 if limit.endswith("Gi") else 20)
    assert int(env["TIERWISE_ROUTER_LEDGER_LOCAL_MAX_BYTES"]) <= limit_bytes // 2


def test_fails_expiration_before_the_object_lock_ends() -> None:
    from cdktn import TerraformStack, Testing

    from tierwise.constructs.encryption_key import EncryptionKey, EncryptionKeyProps
    from tierwise.constructs.serving.data_bucket import DataBucket, DataBucketProps

    stack = TerraformStack(Testing.app(), "test")
    key = EncryptionKey(stack, "key", props=EncryptionKeyProps(alias="k", account_id="111111111111",
                                                               region="us-west-2", description="k"))
    with pytest.raises(ValueError, match="expiration_days must be >= 1 and >= object_lock_days"):
        DataBucket(stack, "b", key=key, props=DataBucketProps(name="b", object_lock_days=30, expiration_days=7))
