"""What both fixture scripts (tests/policies/make_fixtures.py, tests/agents/make_agent_fixtures.py) write with:
the synthesized-document shape (provider with default tags, construct-path metadata on every resource) and the
writer of tests/policies/fixtures/<CHECK_ID>/stacks/<stack>/cdk.tf.json."""

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent / "fixtures"
TAGS = {"team": "shared", "environment": "fx", "cost-center": "platform"}
PROVIDER = {"aws": [{"region": "us-east-1", "default_tags": [{"tags": TAGS}]}]}


def meta(path):
    return {"//": {"metadata": {"path": f"fx/{path}", "uniqueId": path}}}


def pol(*stmts):
    return json.dumps({"Version": "2012-10-17", "Statement": list(stmts)})


def write(check, stacks):
    for stack, resources in stacks.items():
        doc = {"provider": PROVIDER, "resource": {}}
        for (rtype, name), body in resources.items():
            doc["resource"].setdefault(rtype, {})[name] = {**meta(name), **body}
        d = HERE / check / "stacks" / stack
        d.mkdir(parents=True, exist_ok=True)
        (d / "cdk.tf.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    (HERE / check / "tierwise.json").write_text(json.dumps({"environment": "fx"}) + "\n")
