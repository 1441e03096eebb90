"""Each serving workload's Pod Identity role is bound to exactly its own service account and grants
exactly the actions that workload needs, on its own resources."""

from __future__ import annotations

from typing import Any

import json

import pytest

NAMESPACE = "tierwise-serving"


def ref_name(value: str) -> str:
    """`${aws_iam_role.x.arn}` -> `x`."""
    assert value.startswith("${") and value.endswith("}"), value
    return value[2:-1].split(".")[1]

pytestmark = pytest.mark.synth

EXPECTED_ACTIONS = {
    "router": {"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream", "s3:PutObject", "kms:GenerateDataKey"},
    "rag": {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "kms:Decrypt"},
    "guardrails": {"sqs:SendMessage", "s3:PutObject", "kms:Decrypt", "kms:GenerateDataKey"},
}
CSI_DRIVER_SA = "s3-csi-driver-sa"
VLLM_ACTIONS = {"s3:GetObject", "s3:ListBucket", "kms:Decrypt"}


def _bindings(s: Any) -> dict[str, dict]:
    """service account -> {role, association, statements}."""
    roles = s.resources("aws_iam_role")
    policies = {ref_name(p["role"]): json.loads(p["policy"]) for p in s.resources("aws_iam_role_policy").values()}
    out: dict[str, dict] = {}
    for assoc_id, a in s.resources("aws_eks_pod_identity_association").items():
        role = ref_name(a["role_arn"])
        assert role in roles, f"{assoc_id} points at a role outside the stack"
        assert a["service_account"] not in out, f"service account {a['service_account']} bound twice"
        out[a["service_account"]] = {"role": role, "namespace": a["namespace"],
                                     "statements": policies.get(role, {}).get("Statement", [])}
    return out


def test_every_role_has_exactly_one_association(synth: Any) -> None:
    assocs = [ref_name(a["role_arn"]) for a in synth.resources("aws_eks_pod_identity_association").values()]
    assert sorted(assocs) == sorted(synth.resources("aws_iam_role")), "each role is bound by exactly one association"


def test_each_workload_identity_is_bound_to_its_own_service_account(synth: Any) -> None:
    bindings = _bindings(synth)
    # the Mountpoint CSI add-on creates its own service account in kube-system (test_objects checks its scope)
    assert bindings.pop(CSI_DRIVER_SA)["namespace"] == "kube-system"
    expected = {"router", "rag", "guardrails", *(f"vllm-{m.name}" for m in synth.env.models)}
    assert set(bindings) == expected
    for sa, b in bindings.items():
        assert b["namespace"] == NAMESPACE
        synth.object("ServiceAccount", sa)  # the bound service account exists ...
        users = [o for o in synth.objects() if o["kind"] in ("Deployment", "LeaderWorkerSet")
                 for t in _templates(o) if t["spec"]["serviceAccountName"] == sa]
        assert len(users) == 1, f"{sa}: used by {len(users)} workloads"  # ... and exactly one workload runs as it
        role = synth.resources("aws_iam_role")[b["role"]]
        trust = json.loads(role["assume_role_policy"])["Statement"]
        assert [t["Principal"] for t in trust] == [{"Service": "pods.eks.amazonaws.com"}]


def _templates(obj: dict) -> list[dict]:
    if obj["kind"] == "Deployment":
        return [obj["spec"]["template"]]
    lwt = obj["spec"]["leaderWorkerTemplate"]
    return [lwt["leaderTemplate"], lwt["workerTemplate"]]


def _actions(statements: list[dict]) -> set[str]:
    return {a for st in statements for a in st["Action"]}


@pytest.mark.parametrize("service", sorted(EXPECTED_ACTIONS))
def test_platform_service_has_only_its_listed_actions(synth: Any, service: str) -> None:
    b = _bindings(synth)[service]
    assert _actions(b["statements"]) == EXPECTED_ACTIONS[service]
    for st in b["statements"]:
        assert st["Effect"] == "Allow"
        assert "*" not in st["Resource"]


def test_router_invokes_only_allowed_bedrock_models(synth: Any) -> None:
    b = _bindings(synth)["router"]
    env = synth.env
    # each allowed id is a us. inference profile: the profile ARN in the region, the model in each destination region
    want = sorted({f"arn:aws:bedrock:{env.region}:{env.account_id}:inference-profile/{m}" for m in env.bedrock.allowed_model_ids}
                  | {f"arn:aws:bedrock:{r}::foundation-model/{m.removeprefix('us.')}" for m in env.bedrock.allowed_model_ids
                     for r in ("us-east-1", "us-east-2", "us-west-2")})
    assert [r for st in b["statements"] if st["Action"][0].startswith("bedrock:") for r in st["Resource"]] == want


def test_guardrails_writes_only_audit_prefix_and_sends_only_to_escalations(synth: Any) -> None:
    st = {s["Sid"]: s for s in _bindings(synth)["guardrails"]["statements"]}
    [audit] = st["AuditWrite"]["Resource"]
    assert audit.startswith("${aws_s3_bucket.audit-bucket") and audit.endswith("/guardrails/*")
    [queue] = st["SendEscalations"]["Resource"]
    target = synth.resources("aws_sqs_queue")[ref_name(queue)]
    assert target["name"] == f"tierwise-{synth.env.name}-escalations"  # the queue itself, never its DLQ


def test_model_servers_read_only_their_own_weights_and_adapters(synth: Any) -> None:
    bindings = _bindings(synth)
    for m in synth.env.models:
        b = bindings[f"vllm-{m.name}"]
        assert _actions(b["statements"]) == VLLM_ACTIONS, m.name
        reads = {s["Sid"]: s["Resource"] for s in b["statements"]}
        weights = [m.source] + ([m.speculative_model] if m.speculative_model else [])
        assert sorted(r.split("}/", 1)[1] for r in reads["WeightsRead"]) == sorted(f"{w}/*" for w in weights)
        assert all("models-bucket" in r for r in reads["WeightsRead"])
        if m.lora_adapters:
            assert [r.split("}/", 1)[1] for r in reads["AdaptersRead"]] == [f"{m.name}/*"]
            assert all("adapters-bucket" in r for r in reads["AdaptersRead"])
        else:
            assert "AdaptersRead" not in reads
