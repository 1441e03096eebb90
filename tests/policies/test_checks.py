"""One fixture set per check: exact sets of passing and failing resource names, no unknowns, no errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tierwise.policies import catalog
from tierwise.policies.engine import FAIL, PASS, UNKNOWN, load_index, run_checks

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def verdicts(check_id: str):
    index = load_index(FIXTURES / check_id)
    results = run_checks(index, [catalog.by_id()[check_id]()])
    assert all(r.check_id == check_id for r in results)
    assert not [r for r in results if r.message.startswith("check error")], results
    name = lambda r: r.address.rsplit(".", 1)[-1]  # noqa: E731
    return ({name(r) for r in results if r.status == PASS}, {name(r) for r in results if r.status == FAIL},
            [r for r in results if r.status == UNKNOWN], results)


def expected(check_id: str):
    names = set()
    for f in (FIXTURES / check_id / "stacks").glob("*/cdk.tf.json"):
        names |= set(re.findall(r'"((?:pass|fail)_[a-z0-9_]+)": \{', f.read_text()))
    return {n for n in names if n.startswith("pass_")}, {n for n in names if n.startswith("fail_")}


@pytest.mark.parametrize("check_id", sorted(catalog.by_id()))
def test_fixture_verdicts_are_exact(check_id):
    passed, failed, unknown, _ = verdicts(check_id)
    want_pass, want_fail = expected(check_id)
    assert want_pass and want_fail, f"{check_id}: fixture needs pass_* and fail_* resources"
    assert failed == want_fail
    assert passed - failed == want_pass  # a resource with one failing finding is a failure
    assert unknown == []


#: For every failing fixture resource: the offending values its message must quote (what was seen, so a reader can
#: find it without rerunning the gate). A new fail_* fixture needs an entry here.
OFFENDING = {
    "TW-AGENT-001": {"fail_default_sa": ["default service account"], "fail_no_identity": ["0 Pod Identity associations"],
                     "fail_shared_role": ["team-b/reporter"], "fail_shared_sa": ["team-a/worker"]},
    "TW-AGENT-002": {"fail_bedrock_action": ["bedrock:InvokeModel"], "fail_bedrock_wildcard": ["bedrock:*"],
                     "fail_vllm_peer": ["vllm-llama"], "fail_vpc_all_ports": ["10.40.0.0/16", "ports all"]},
    "TW-AGENT-003": {"fail_any_destination": ["any destination"], "fail_hand_added_policy": ["10.0.0.0/8", "[5432]"],
                     "fail_no_declaration": ["tierwise.io/declared-egress"], "fail_undeclared_service": ["'rag'", "[8000]"],
                     "fail_whole_namespace": ["every pod of namespace tierwise-serving"]},
    "TW-COST-001": {"fail_no_gpu_limit": ["'l4b'", "{'cpu': 192}"], "fail_zero": ["'0'"]},
    "TW-COST-002": {"fail_borrower": ["$9,746", "$5,000"], "fail_poor": ["$9,746", "$9,000"]},
    "TW-COST-003": {"fail_budget_b_silent": ["no notification"], "fail_queue_c": ["user:cost-center$CC-3"]},
    "TW-COST-004": {"fail_q2": ["= 33", "= 24"], "fail_q3": ["'ghost'"], "fail_pool_a100": ["25 units", "= 24"]},
    "TW-COST-005": {"fail_cpu_unlimited": ["'batch'", "no cpu limit"], "fail_platform_budget": ["$5,000", "batch unbounded"]},
    "TW-DEPLOY-001": {"fail_memory": ["9 memory slices", "A100-SXM4-80GB"], "fail_compute": ["8 compute slices", "H100"],
                      "fail_undefined": ["'nope'"]},
    "TW-DEPLOY-002": {"fail_both": ["2 components", "device plugin", "DRA"], "fail_neither": ["0 components"]},
    "TW-DEPLOY-003": {"fail_upstream": ["quay.io", "egress allowlist"], "fail_docker_hub": ["docker.io"],
                      "fail_mirror_missing": ["'nvcr/nvidia/cuda'", "mirror"], "fail_cache_missing": ["quay", "cache rule"]},
    "TW-DEPLOY-004": {"fail_foundation_model_only": ["inference-profile/us.anthropic.claude-sonnet-4-6", "us-west-2"],
                      "fail_no_destinations": ["us-east-2", "us-west-2"]},
    "TW-DEPLOY-005": {"fail_no_rollback": ["'n'", "rollback target"], "fail_unlabelled_split": ["['n', 'n-v2']"],
                      "fail_pool_missing": ["'ghost'"]},
    "TW-IAM-001": {"fail_irsa_like": ["StringLike", "system:serviceaccount:rag:*"], "fail_irsa_noaud": ["`aud`"],
                   "fail_shared": ["2 workloads", "a/x", "b/y"], "fail_unbound": ["bound to no service account"]},
    "TW-IAM-002": {"fail_admin": ["AdministratorAccess"], "fail_star_action": ["'s3:*'"],
                   "fail_write_star": ["'sqs:SendMessage'", "'*'"], "fail_customer_all": ["action '*'"]},
    "TW-IAM-003": {"fail_other_model": ["'meta.llama3-70b-instruct-v1:0'"], "fail_wildcard_model": ["foundation-model/*"]},
    "TW-NET-001": {"fail_open": ["'0.0.0.0/0'"], "fail_rule_v6": ["'::/0'"], "fail_nodes_nat": ["nat_gateway_id"],
                   "fail_nodes_orphan": ["no route table association"]},
    "TW-NET-002": {"fail_mid": ["'api.*.example.com'"], "fail_star": ["'*'"], "fail_tld": ["'*.com'"]},
    "TW-NET-003": {"fail_helm_ctrl": ["'ctrl-system'", "Helm chart ctrl"], "fail_helm_default": ["'default'"],
                   "fail_ns_ingress_only": ["'half'", "for Egress;"], "fail_deploy_kube_system": ["Deployment/mine"],
                   "fail_ns_allow_all": ["'open'", "Egress/Ingress"], "fail_deploy_orphan": ["'orphan'", "Deployment/app"],
                   "fail_ns_selective": ["'sel'"], "fail_ns_shared_serving": ["'tierwise-serving'"],
                   "fail_typed_deploy": ["'typed'", "kubernetes_deployment_v1/legacy"]},
    "TW-TAG-001": {"fail_blanked": ["['cost-center']"], "fail_untagged": ["['team', 'environment', 'cost-center']"]},
}
FIX_VERBS = r"add|set|lower|raise|scope|list|give|point|replace|delete|remove|keep|associate|name|declare"


@pytest.mark.parametrize("check_id", sorted(catalog.by_id()))
def test_failure_messages_name_resource_value_and_fix(check_id):
    _, failed, _, results = verdicts(check_id)
    assert check_id in OFFENDING, f"{check_id}: list the offending values each fail_* fixture's message must quote"
    assert set(OFFENDING[check_id]) == failed, "OFFENDING must cover exactly the failing fixture resources"
    by_name: dict[str, list[str]] = {}
    for r in (r for r in results if r.status == FAIL):
        name = r.address.rsplit(".", 1)[-1]
        by_name.setdefault(name, []).append(r.message)
        assert r.fix and r.severity and r.title
        # the subject: the resource's address, or for team/platform findings the team or platform it is about
        kind, _, subject = r.finding.partition("::")
        subjects = [r.address] + ([f"team {subject}"] if kind == "Team" else ["platform"] if kind == "Platform" else [])
        assert any(s in r.message for s in subjects), (subjects, r.message)
        # the fix: its own clause after a ";", starting with a verb (a word, not "address" for "add")
        assert re.search(rf";\s*({FIX_VERBS})\b", r.message), r.message
    for name, values in OFFENDING[check_id].items():
        for v in values:
            assert any(v in m for m in by_name[name]), f"{check_id} {name}: no message quotes {v!r}: {by_name[name]}"


def test_granular_findings_carry_the_offending_value():
    _, _, _, results = verdicts("TW-IAM-002")
    findings = {r.finding for r in results if r.status == FAIL}
    assert {"Action::s3:*", "Action::*", "Resource::*::sqs:SendMessage", "Managed::AdministratorAccess"} <= findings


def test_cost_002_reports_the_numbers():
    _, _, _, results = verdicts("TW-COST-002")
    poor = next(r for r in results if "team poor" in r.message)
    assert "$9,746" in poor.message and "$9,000" in poor.message
    borrower = next(r for r in results if "team borrower" in r.message)
    assert borrower.status == FAIL  # unbounded borrowing: reach is the whole pool


def test_a_crashing_check_is_a_failure_not_a_pass():
    from tierwise.policies.engine import CheckMeta

    class Boom:
        meta = CheckMeta("TW-XXX-999", "t", "LOW", (), (), "r", "f", "p")

        def run(self, index):
            raise KeyError("nope")

    res = run_checks(load_index(FIXTURES / "TW-TAG-001"), [Boom()])
    assert [(r.status, r.message.split(":")[0]) for r in res] == [(FAIL, "check error")]


def test_effective_tags_are_default_tags_overridden_by_own_tags():
    index = load_index(FIXTURES / "TW-TAG-001")
    r = index.get("fx-governance", "aws_sns_topic", "pass_team_override")
    assert index.effective_tags(r) == {"team": "billing", "environment": "fx", "cost-center": "CC-2"}
