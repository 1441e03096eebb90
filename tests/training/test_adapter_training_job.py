"""`AdapterTrainingJob` on its own: the GPU unit follows the pool's sharing mode (whole GPU, MIG claim,
time-sliced share), and bad props fail in the constructor."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tierwise.constructs.training.adapter_training_job import AdapterTrainingJob, AdapterTrainingJobProps


def _props(**over: Any) -> AdapterTrainingJobProps:
    base = dict(name="m-a", namespace="team-a", team="team-a", queue_name="team-a", image="repo/train:1", model="m",
                adapter="a", weights_prefix="org/m", dataset_prefix="datasets/m-a/0123456789abcdef",
                dataset_id="0123456789abcdef", train_config={"method": "qlora", "rank": 8}, pool="p",
                gpu_kind="full", region="us-west-2", role_name="r", account_id="111111111111", cluster_name="c",
                cluster_arn="arn:aws:eks:us-west-2:111111111111:cluster/c")
    return AdapterTrainingJobProps(**{**base, **over})


def _synth(props: AdapterTrainingJobProps) -> dict[str, Any]:
    from cdktn import TerraformStack, Testing

    from tierwise.constructs.encryption_key import EncryptionKey, EncryptionKeyProps
    from tierwise.constructs.serving.data_bucket import DataBucket, DataBucketProps

    stack = TerraformStack(Testing.app(), "test")
    key = EncryptionKey(stack, "key", props=EncryptionKeyProps(alias="k", account_id="111111111111",
                                                               region="us-west-2", description="k"))
    models = DataBucket(stack, "models", key=key, props=DataBucketProps(name="models"))
    adapters = DataBucket(stack, "adapters", key=key, props=DataBucketProps(name="adapters"))
    AdapterTrainingJob(stack, "job", models_bucket=models, adapters_bucket=adapters, props=props)
    return json.loads(Testing.synth(stack))


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    [cj] = [r["manifest"] for r in doc["resource"]["kubernetes_manifest"].values() if r["manifest"]["kind"] == "CronJob"]
    return cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]


@pytest.mark.parametrize("kind", ["full", "timeslice"])
def test_whole_gpu_or_time_sliced_share_is_one_nvidia_gpu(kind: str) -> None:
    pod = _pod(_synth(_props(gpu_kind=kind)))
    res = pod["containers"][0]["resources"]
    assert res["requests"]["nvidia.com/gpu"] == res["limits"]["nvidia.com/gpu"] == 1
    assert "resourceClaims" not in pod and "claims" not in res


def test_mig_is_one_dra_claim_and_no_device_plugin_gpu() -> None:
    pod = _pod(_synth(_props(gpu_kind="mig", claim_template="mig-3g-40gb")))
    res = pod["containers"][0]["resources"]
    assert pod["resourceClaims"] == [{"name": "mig", "resourceClaimTemplateName": "mig-3g-40gb"}]
    assert res["claims"] == [{"name": "mig"}] and "nvidia.com/gpu" not in res["requests"]


def test_policy_never_grants_delete_or_a_whole_bucket() -> None:
    doc = _synth(_props())
    [pol] = doc["resource"]["aws_iam_role_policy"].values()
    stmts = json.loads(pol["policy"])["Statement"]
    actions = {a for s in stmts for a in s["Action"]}
    assert actions == {"s3:GetObject", "s3:PutObject", "s3:ListBucket", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"}
    for s in stmts:
        if "s3:GetObject" in s["Action"]:
            assert all(r.endswith("/*") and "}/" in r for r in s["Resource"])  # always a prefix, never the bucket's objects


def test_fails_mig_without_claim_template() -> None:
    with pytest.raises(ValueError, match="gpu_kind 'mig' needs claim_template"):
        _synth(_props(gpu_kind="mig"))


def test_fails_claim_template_without_mig() -> None:
    with pytest.raises(ValueError, match="claim_template is only for gpu_kind 'mig'"):
        _synth(_props(gpu_kind="full", claim_template="mig-1g-5gb"))


def test_fails_prefix_with_slashes() -> None:
    with pytest.raises(ValueError, match="weights_prefix must be a key prefix"):
        _synth(_props(weights_prefix="/org/m/"))


def test_fails_short_deadline() -> None:
    with pytest.raises(ValueError, match="active_deadline_s must be >= 600"):
        _synth(_props(active_deadline_s=60))
