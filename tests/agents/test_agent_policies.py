"""TW-AGENT-001..003 over their fixtures: exact pass/fail sets, no unknowns, findings that name the value."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tierwise.policies.checks.agents.tw_agent_001_own_identity import AgentOwnIdentity
from tierwise.policies.checks.agents.tw_agent_002_models_via_router import AgentModelsViaRouter
from tierwise.policies.checks.agents.tw_agent_003_declared_egress import AgentDeclaredEgress
from tierwise.policies.engine import FAIL, PASS, UNKNOWN, load_index, run_checks

FIXTURES = Path(__file__).resolve().parents[1] / "policies" / "fixtures"
CHECKS = {c.meta.id: c for c in (AgentOwnIdentity, AgentModelsViaRouter, AgentDeclaredEgress)}


def verdicts(check_id):
    results = run_checks(load_index(FIXTURES / check_id), [CHECKS[check_id]()])
    assert not [r for r in results if r.message.startswith("check error")], results
    name = lambda r: r.address.rsplit(".", 1)[-1]  # noqa: E731
    return ({name(r) for r in results if r.status == PASS}, {name(r) for r in results if r.status == FAIL},
            [r for r in results if r.status == UNKNOWN], results)


def expected(check_id):
    names = set()
    for f in (FIXTURES / check_id / "stacks").glob("*/cdk.tf.json"):
        names |= set(re.findall(r'"((?:pass|fail)_[a-z0-9_]+)": \{', f.read_text()))
    return {n for n in names if n.startswith("pass_")}, {n for n in names if n.startswith("fail_")}


@pytest.mark.parametrize("check_id", sorted(CHECKS))
def test_fixture_verdicts_are_exact(check_id):
    passed, failed, unknown, _ = verdicts(check_id)
    want_pass, want_fail = expected(check_id)
    assert failed == want_fail
    assert passed - failed == want_pass
    assert unknown == []


def test_findings_carry_the_offending_value():
    findings = {r.finding for r in verdicts("TW-AGENT-002")[3] if r.status == FAIL}
    assert {"Action::bedrock:InvokeModel", "Action::bedrock:*", "Egress::agent-sneaky::vllm-llama",
            "Egress::agent-wide::10.40.0.0/16"} <= findings
    msgs = " ".join(r.message for r in verdicts("TW-AGENT-003")[3] if r.status == FAIL)
    assert "np_patched_extra" in msgs and "every pod of namespace tierwise-serving" in msgs


def test_critical_model_check_is_unsuppressible():
    assert AgentModelsViaRouter.meta.severity == "CRITICAL" and AgentModelsViaRouter.meta.unsuppressible
