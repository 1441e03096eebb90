"""What one `agents:` entry synthesizes into (dev and prod), read from cdktf.out like Terraform and the gate do."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tierwise.policies.checks.agents.tw_agent_001_own_identity import AgentOwnIdentity
from tierwise.policies.checks.agents.tw_agent_002_models_via_router import AgentModelsViaRouter
from tierwise.policies.checks.agents.tw_agent_003_declared_egress import AgentDeclaredEgress
from tierwise.policies.engine import PASS, load_index, run_checks

REPO = Path(__file__).resolve().parents[2]


def objects(stack: dict, kind: str) -> list[dict]:
    return [r["manifest"] for r in stack.get("resource", {}).get("kubernetes_manifest", {}).values() if r["manifest"]["kind"] == kind]


def one(stack: dict, kind: str, name: str) -> dict:
    found = [o for o in objects(stack, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)}"
    return found[0]


def res(stack: dict, rtype: str) -> dict:
    return stack.get("resource", {}).get(rtype, {})


@pytest.mark.synth
@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_agent_entry_synthesizes_into_its_pieces(agent_synths, env_name):
    env, _, stacks = agent_synths[env_name]
    stack = stacks[f"{env_name}-agents"]
    for a in env.agents:
        ns = a.namespace or next(t for t in env.teams if t.name == a.team).namespaces[0]
        name = f"agent-{a.name}"
        sa = one(stack, "ServiceAccount", name)
        assert sa["metadata"]["namespace"] == ns and sa["automountServiceAccountToken"] is False
        dep = one(stack, "Deployment", name)
        pod = dep["spec"]["template"]["spec"]
        assert "replicas" not in dep["spec"]  # KEDA owns them
        assert pod["serviceAccountName"] == name and pod["nodeSelector"] == {"tierwise.io/node-role": "agents"}
        assert {"key": "tierwise.io/agents", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in pod["tolerations"]
        key_vol = next(v for v in pod["volumes"] if v["name"] == "router-key")["secret"]
        assert key_vol["secretName"] == a.key_secret and key_vol["items"] == [{"key": "api-key", "path": "tierwise_agent_router_api_key"}]
        assert not [e for e in pod["containers"][0]["env"] if "valueFrom" in e]  # no secret in env vars
        decl = json.loads(dep["metadata"]["annotations"]["tierwise.io/declared-egress"])
        assert sorted(decl["fqdns"]) == sorted(t.fqdn for t in a.tools_of("external"))
        so = one(stack, "ScaledObject", name)
        trig = so["spec"]["triggers"][0]
        assert trig["type"] == "aws-sqs-queue" and trig["metadata"]["identityOwner"] == "operator"
        assert trig["metadata"]["queueLength"] == str(a.queue.messages_per_replica)
        assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == (a.replicas.min, a.replicas.max)
        cfg = json.loads(one(stack, "ConfigMap", name)["data"]["agent.json"])
        assert cfg["models"] == a.models and cfg["router_principal"] == f"{a.team}:agent:{a.name}"
        assert cfg["approval_required"] == sorted(a.approval_required)
        # queue + DLQ, checkpoint table, role
        queues = {q["name"]: q for q in res(stack, "aws_sqs_queue").values()}
        q = queues[f"tierwise-{env_name}-agent-{a.name}"]
        assert json.loads(q["redrive_policy"])["maxReceiveCount"] == a.queue.max_receives
        assert f"tierwise-{env_name}-agent-{a.name}-dlq" in queues
        table = next(t for t in res(stack, "aws_dynamodb_table").values() if t["name"] == f"tierwise-{env_name}-agent-{a.name}")
        assert table["point_in_time_recovery"]["enabled"] and table["server_side_encryption"]["enabled"]


@pytest.mark.synth
def test_agent_role_is_scoped_to_exactly_its_queue_table_and_declared_actions(agent_synths):
    env, _, stacks = agent_synths["prod"]
    stack = stacks["prod-agents"]
    pols = {p["name"]: json.loads(p["policy"]) for p in res(stack, "aws_iam_role_policy").values()}
    doc = pols["tierwise-prod-agent-invoice-reconciler-scoped"]
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert set(by_sid) == {"ConsumeWorkQueue", "DecryptWorkQueue", "Checkpoints", "EncryptCheckpoints",
                           "ToolReadInvoices", "ToolPostAdjustment"}
    # exactly this agent's work queue (not its DLQ) and checkpoint table, by their Terraform addresses
    [queue] = [k for k, q in res(stack, "aws_sqs_queue").items() if q["name"] == "tierwise-prod-agent-invoice-reconciler"]
    assert by_sid["ConsumeWorkQueue"]["Resource"] == [f"${{aws_sqs_queue.{queue}.arn}}"]
    [table] = [k for k, t in res(stack, "aws_dynamodb_table").items() if t["name"] == "tierwise-prod-agent-invoice-reconciler"]
    assert by_sid["Checkpoints"]["Resource"] == [f"${{aws_dynamodb_table.{table}.arn}}"]
    assert by_sid["ToolReadInvoices"] == {"Sid": "ToolReadInvoices", "Effect": "Allow", "Action": ["s3:GetObject"],
                                          "Resource": ["arn:aws:s3:::billing-invoices-222222222222/incoming/*"]}
    assert by_sid["ToolPostAdjustment"]["Resource"] == ["arn:aws:sqs:us-east-1:222222222222:billing-adjustments"]
    assert not any(a.startswith("bedrock") for s in doc["Statement"] for a in s["Action"])
    keda = pols["tierwise-prod-keda-agent-queues-scoped"]["Statement"]
    assert [s["Action"] for s in keda] == [["sqs:GetQueueAttributes"]] and len(keda[0]["Resource"]) == len(env.agents)


@pytest.mark.synth
def test_agent_pool_is_cpu_only_with_limits(agent_synths):
    env, _, stacks = agent_synths["prod"]
    np = one(stacks["prod-agents"], "NodePool", "agents")
    assert np["spec"]["limits"] == {"cpu": env.agent_pool.cpu_limit, "memory": f"{env.agent_pool.memory_limit_gib}Gi"}
    reqs = {r["key"]: r for r in np["spec"]["template"]["spec"]["requirements"]}
    assert reqs["karpenter.k8s.aws/instance-gpu-count"]["operator"] == "DoesNotExist"
    assert "nvidia.com/gpu" not in np["spec"]["limits"]


@pytest.mark.synth
def test_router_config_carries_each_agent_as_its_own_principal(agent_synths):
    env, _, stacks = agent_synths["prod"]
    cm = one(stacks["prod-serving"], "ConfigMap", "router")
    teams = {t["name"]: t for t in json.loads(cm["data"]["router.base.json"])["teams"]}
    a = env.agents[0]
    assert teams[a.router_principal] == {"name": a.router_principal, "allowed_models": sorted(a.models),
                                         "budgets": {"tokens_per_day": a.tokens_per_day, "usd_per_month": "4000"}}


@pytest.mark.synth
@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_shipped_agents_pass_the_agent_checks(agent_synths, env_name):
    _, out, _ = agent_synths[env_name]
    results = run_checks(load_index(out), [AgentOwnIdentity(), AgentModelsViaRouter(), AgentDeclaredEgress()])
    assert results and all(r.status == PASS for r in results), [r.message for r in results if r.status != PASS]


# -- config validation: a bad entry fails at load time, saying what and how to fix -----------------------
def _env(**agent_overrides):
    from tierwise.config.model import Environment

    data = yaml.safe_load((REPO / "environments" / "dev.yaml").read_text())
    data["agents"][0] = {**data["agents"][0], **agent_overrides}
    return lambda: Environment.model_validate(data)


@pytest.mark.parametrize("override, message", [
    ({"team": "nobody"}, "team 'nobody' is not in teams"),
    ({"models": ["llama-70b"]}, "model 'llama-70b' is not in team assistants's allowed_models"),
    ({"approval_required": ["rm-rf"]}, "approval_required names tool 'rm-rf', which is not declared"),
    ({"tools": [{"name": "exfil", "kind": "external", "fqdn": "evil.example.net"}], "approval_required": []}, "not on network.egress_allowlist"),
    ({"tools": [{"name": "llm", "kind": "aws", "actions": ["bedrock:InvokeModel"], "resources": [
        "arn:aws:bedrock:us-west-2::foundation-model/x"]}], "approval_required": []}, "calls a model directly"),
    ({"tools": [{"name": "all", "kind": "aws", "actions": ["s3:GetObject"], "resources": ["*"]}], "approval_required": []}, "must be a named ARN"),
    ({"tokens_per_day": 9_000_000}, "agent budgets are carved out of the team's"),
    ({"namespace": "billing"}, "is not one of team assistants's namespaces"),
    ({"replicas": {"min": 0, "max": 100}, "cpu": "1"}, "exceeds agent_pool.cpu_limit"),
])
def test_fails_on_bad_agent_entries(override, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _env(**override)()
