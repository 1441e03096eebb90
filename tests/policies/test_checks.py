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


@pytest.mark.parametrize("check_id", sorted(catalog.by_id()))
def test_failure_messages_name_resource_value_and_fix(check_id):
    _, _, _, results = verdicts(check_id)
    fails = [r for r in results if r.status == FAIL]
    for r in fails:
        assert r.address.rsplit(".", 1)[-1] in r.message or r.address in r.message or "team " in r.message
        assert r.fix and r.severity and r.title
        assert re.search(r"(add|set|lower|raise|scope|list|give|point|replace|delete|remove|keep|associate|name)", r.message)
        # as a whole word: "add" must not be satisfied by "address", "name" by "namespace", "list" by "allowlist"
        assert re.search(r"\b(add|set|lower|raise|scope|list|give|point|replace|delete|remove|keep|associate|name|declare)\b",
                         r.message), r.message


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
