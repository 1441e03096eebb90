"""Suppression lifecycle, report formats (SARIF schema, JUnit), CLI exit codes, price refresh (Stubber),
and the real gate on synthesized dev and prod."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tierwise.policies import gate, suppressions
from tierwise.policies.engine import SUPPRESSED
from tierwise.policies.report import junit, markdown, sarif

HERE = Path(__file__).resolve().parent
FIX = HERE / "fixtures"
TODAY = dt.date(2026, 11, 21)
EXE = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "tierwise")


def sup_file(tmp_path, entries) -> Path:
    import yaml

    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({"suppressions": entries}))
    return p


GOOD = {"check": "TW-NET-002[Target::*]", "resource": "fx/fail_star", "reason": "vendor mirror needs it until the proxy lands",
        "owner": "net-team", "expires": "2026-12-31"}


def run(tmp_path, entries, fixture="TW-NET-002"):
    return gate.run_gate(FIX / fixture, use_checkov=False, suppressions_file=sup_file(tmp_path, entries), today=TODAY)


def test_valid_suppression_marks_the_finding_and_keeps_it_in_the_report(tmp_path):
    rep = run(tmp_path, [GOOD])
    sup = [r for r in rep.results if r.status == SUPPRESSED]
    assert [(r.full_id, r.suppression["owner"]) for r in sup] == [("TW-NET-002[Target::*]", "net-team")]
    assert not [r for r in rep.results if r.check_id == "TW-SUP-001"]


@pytest.mark.parametrize("change,why", [
    ({"expires": "2026-11-01"}, "expired"),
    ({"reason": "n/a"}, "shorter than 20"),
    ({"owner": ""}, "no owner"),
    ({"expires": "2027-06-01"}, "more than 90 days"),
    ({"resource": "nothing/matches/this"}, "matches no finding"),
    ({"check": "TW-NET-002", "resource": "fx/fail_star[Target::*]"}, "finding id in the resource field"),
])
def test_bad_suppressions_are_failures(tmp_path, change, why):
    rep = run(tmp_path, [{**GOOD, **change}])
    errs = [r for r in rep.results if r.check_id == "TW-SUP-001"]
    assert len(errs) == 1 and why in errs[0].message
    assert rep.exit_code == 1


def test_critical_checks_are_unsuppressible(tmp_path):
    e = {**GOOD, "check": "TW-COST-001", "resource": "*"}
    rep = run(tmp_path, [e], fixture="TW-COST-001")
    assert any("unsuppressible" in r.message for r in rep.results if r.check_id == "TW-SUP-001")
    assert not [r for r in rep.results if r.status == SUPPRESSED]


def test_environment_scoped_suppression_only_applies_there(tmp_path):
    rep = run(tmp_path, [{**GOOD, "environment": "prod"}])
    assert not [r for r in rep.results if r.status == SUPPRESSED]
    # the finding is still reported and still blocks (not merely absent)
    assert "TW-NET-002[Target::*]" in {r.full_id for r in rep.blocking()}


def _report(tmp_path):
    rep = run(tmp_path, [GOOD])
    rep.cost = {"teams": {"a": {"budget_usd": 100.0, "gpu_usd": 50.0, "bedrock_usd": 5.0, "total_usd": 55.0}},
                "pools": {"l4": {"gpu_limit": 8, "worst_instances": 1, "worst_instance_type": "g6.48xlarge", "monthly_usd": 9745.8}}}
    rep.cost_diff = {"team a": {"base": 40.0, "head": 55.0, "delta": 15.0}}
    return rep


def test_sarif_validates_against_the_official_schema(tmp_path):
    import jsonschema

    schema = json.loads((HERE / "data" / "sarif-schema-2.1.0.json").read_text())
    doc = json.loads(sarif.render(_report(tmp_path)))
    jsonschema.Draft4Validator(schema).validate(doc)
    res = doc["runs"][0]["results"]
    assert {r["ruleId"] for r in res} == {"TW-NET-002"}
    assert sum(1 for r in res if r.get("suppressions")) == 1


def test_sarif_schema_rejects_a_broken_document():
    import jsonschema

    schema = json.loads((HERE / "data" / "sarif-schema-2.1.0.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema).validate({"version": "2.1.0", "runs": [{"tool": {}}]})


def test_junit_parses_with_counts(tmp_path):
    rep = _report(tmp_path)
    root = ET.fromstring(junit.render(rep))
    suite = root.find("testsuite[@name='TW-NET-002']")
    assert int(suite.get("failures")) == 2 and int(suite.get("skipped")) == 1 and int(suite.get("tests")) == 4
    assert len(suite.findall("testcase/failure")) == 2


def test_markdown_puts_failures_first_then_cost_and_diff(tmp_path):
    md = markdown.render(_report(tmp_path))
    assert md.index("### Failures") < md.index("Suppressed") < md.index("### Worst-case") < md.index("### Cost change")
    assert "`TW-NET-002[Target::*.com]`" in md and "| team a | base" not in md
    assert "| team a | $40 | $55 | +15 |" in md  # the diff row the renderer built, not just its heading


def cli(*args):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=300, cwd="/tmp")


def test_cli_exit_codes(tmp_path):
    assert cli("policy", "-d", str(tmp_path / "missing")).returncode == 2
    assert "does not exist" in cli("policy", "-d", str(tmp_path / "missing")).stderr
    assert cli("policy", "-d", str(FIX / "TW-NET-002"), "--no-checkov", "--format", "nope").returncode == 2
    r = cli("policy", "-d", str(FIX / "TW-NET-002"), "--no-checkov", "--suppressions", str(sup_file(tmp_path, [])))
    assert r.returncode == 1 and "TW-NET-002[Target::*]" in r.stdout
    lst = cli("policy", "--list")
    assert lst.returncode == 0 and all(i in lst.stdout for i in ("TW-IAM-001", "TW-COST-004", "TW-TAG-001"))


def test_rules_md_is_generated_and_current():
    assert cli("policy", "--list", "--format", "markdown").stdout == (HERE.parents[1] / "policies" / "RULES.md").read_text()


def test_prices_refresh_with_stubber(tmp_path):
    import boto3
    from botocore.stub import Stubber

    from tierwise.policies.prices.refresh import filters, refresh

    table = {"version": "x", "ec2_on_demand": {"regions": {"us-east-1": {"g6.xlarge": 0.5, "p5.48xlarge": 55.04}},
                                               "source": "", "as_of": "", "verified_by_api": False}}
    f = tmp_path / "prices.json"
    f.write_text(json.dumps(table))
    client = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")

    def item(usd):
        return json.dumps({"product": {"sku": "S"}, "terms": {"OnDemand": {"S.T": {"priceDimensions": {
            "S.T.D": {"unit": "Hrs", "pricePerUnit": {"USD": str(usd)}}}}}}})

    with Stubber(client) as st:
        for t, usd in (("g6.xlarge", 0.8048), ("p5.48xlarge", 55.04)):
            st.add_response("get_products", {"PriceList": [item(usd)], "FormatVersion": "aws_v1"},
                            {"ServiceCode": "AmazonEC2", "Filters": filters(t, "us-east-1"), "MaxResults": 10})
        changes = refresh(f, client, today=TODAY)
        st.assert_no_pending_responses()
    assert changes == {"us-east-1": {"g6.xlarge": (0.5, 0.8048)}}
    data = json.loads(f.read_text())
    assert data["ec2_on_demand"]["verified_by_api"] is True and data["ec2_on_demand"]["as_of"] == "2026-11-21"


@pytest.mark.synth
@pytest.mark.slow
@pytest.mark.parametrize("env", ["dev", "prod"])
def test_tierwise_checks_pass_on_shipped_environments(synthesized, env):
    rep = gate.run_gate(synthesized[env])
    bad = [(r.full_id, r.address, r.message) for r in rep.blocking() if r.source == "tierwise"]
    assert bad == []
    c = rep.counts()
    assert c["passed"] > 100 and c["errors"] == 0
    assert {r.check_id for r in rep.results if r.source == "checkov"}  # checkov parsed the CDK output (smoke test)


@pytest.mark.synth
@pytest.mark.slow
@pytest.mark.parametrize("env", ["dev", "prod"])
def test_full_gate_exits_zero_on_shipped_environments(synthesized, env):
    result = gate.run_gate(synthesized[env])
    assert result.exit_code == 0, "\n".join(f"{r.check_id} {r.address}: {r.message}" for r in result.blocking()[:20])


@pytest.mark.synth
@pytest.mark.parametrize("edit,check", [
    (lambda d: d["resource"]["kubernetes_manifest"][next(k for k in d["resource"]["kubernetes_manifest"] if "node-pool" in k)]
     ["manifest"]["spec"]["limits"].pop("nvidia.com/gpu"), "TW-COST-001"),
    (lambda d: [m["manifest"]["spec"].__setitem__("policyTypes", ["Ingress"]) for k, m in d["resource"]["kubernetes_manifest"].items()
                if "default-deny" in k], "TW-NET-003"),
])
def test_an_edited_synth_output_is_caught(synthesized, tmp_path, edit, check):
    dst = tmp_path / "prod"
    shutil.copytree(synthesized["prod"], dst)
    f = dst / "stacks" / "prod-tenancy" / "cdk.tf.json"
    doc = json.loads(f.read_text())
    edit(doc)
    f.write_text(json.dumps(doc))
    rep = gate.run_gate(dst, use_checkov=False)
    assert check in {r.check_id for r in rep.blocking()}
