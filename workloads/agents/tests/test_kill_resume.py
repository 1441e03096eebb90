"""The reference agent against real wire protocols: moto server (SQS + DynamoDB), the real router and the real
guardrails service on loopback. The agent is SIGKILLed while it waits for a human approval, then restarted:
it resumes from its DynamoDB checkpoint and no completed step (model call, tool call, ticket) happens twice."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import urllib.request
from pathlib import Path

import boto3
import pytest
from tierwise_logs import check_lines

from tierwise_agents.testing import free_port, http_ok, service_python, start, wait_until

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[3]
AGENT_VENV = REPO / ".venv-agents" / "bin"
KEY = "tw-agent-ticket-triage-test-key"
PRINCIPAL = "assistants:agent:ticket-triage"
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-west-2"}


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def _get(url: str):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


@pytest.fixture
def platform(tmp_path, stubs):
    vllm, tools = stubs
    router_py = service_python("router", "TIERWISE_ROUTER_PYTHON")
    guard_py = service_python("guardrails", "TIERWISE_GUARDRAILS_PYTHON")
    procs = []
    try:
        moto_port = free_port()
        procs.append(start([str(AGENT_VENV / "moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)], AWS_ENV, tmp_path / "moto.log"))
        moto = f"http://127.0.0.1:{moto_port}"
        wait_until(lambda: http_ok(f"{moto}/moto-api/data.json"), what="moto server", proc=procs[-1].popen)

        (tmp_path / "router.json").write_text(json.dumps({
            "version": 1,
            "teams": [{"name": PRINCIPAL, "api_key_sha256": [hashlib.sha256(KEY.encode()).hexdigest()],
                       "budgets": {"tokens_per_day": 100000}, "allowed_models": ["tiny"]}],
            "models": [{"name": "tiny", "kind": "vllm", "served_model_name": "tiny", "endpoints": [vllm.url],
                        "price": {"input_usd_per_mtok": "0.2", "output_usd_per_mtok": "0.2"}}],
            "routing": {"tier1_model": "tiny"}}))
        router_port = free_port()
        procs.append(start([str(router_py.parent / "tierwise-router"), "serve", "--host", "127.0.0.1", "--port", str(router_port)],
                           {"TIERWISE_ROUTER_CONFIG_PATH": str(tmp_path / "router.json"), "TIERWISE_ROUTER_ENV": "dev",
                            "TIERWISE_ROUTER_LEDGER_PATH": str(tmp_path / "ledger.jsonl"), "TIERWISE_ROUTER_LEDGER_FSYNC": "always"},
                           tmp_path / "router.log"))
        router = f"http://127.0.0.1:{router_port}"
        wait_until(lambda: http_ok(f"{router}/healthz"), what="router", proc=procs[-1].popen)

        # the approval policy: every check filed under it becomes a review ticket (docs/onboard-an-agent.md)
        (tmp_path / "policies.json").write_text(json.dumps({"teams": {"agent-approval": {"input": {
            "check_injection": True, "injection_escalate_threshold": 0.0, "injection_block_threshold": 1.0}}}}))
        guard_port = free_port()
        procs.append(start([str(guard_py.parent / "uvicorn"), "tierwise_guardrails.app:create_app", "--factory",
                            "--host", "127.0.0.1", "--port", str(guard_port)],
                           {"TIERWISE_GUARDRAILS_POLICIES_PATH": str(tmp_path / "policies.json"),
                            "TIERWISE_GUARDRAILS_DATA_DIR": str(tmp_path / "guardrails"), "TIERWISE_GUARDRAILS_ENABLE_NER": "false"},
                           tmp_path / "guardrails.log"))
        guardrails = f"http://127.0.0.1:{guard_port}"
        wait_until(lambda: http_ok(f"{guardrails}/healthz"), timeout_s=120, what="guardrails", proc=procs[-1].popen)

        sqs = boto3.client("sqs", endpoint_url=moto, region_name="us-west-2", aws_access_key_id="testing", aws_secret_access_key="testing")
        ddb = boto3.client("dynamodb", endpoint_url=moto, region_name="us-west-2", aws_access_key_id="testing", aws_secret_access_key="testing")
        queue_url = sqs.create_queue(QueueName="tierwise-dev-agent-ticket-triage")["QueueUrl"]
        ddb.create_table(TableName="tierwise-dev-agent-ticket-triage", BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "task_id", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "task_id", "AttributeType": "S"}])
        # agent.json in exactly the shape AgentWorkload renders into the ConfigMap
        (tmp_path / "agent.json").write_text(json.dumps({
            "agent": "ticket-triage", "team": "assistants", "router_principal": PRINCIPAL, "region": "us-west-2",
            "queue_url": queue_url, "visibility_timeout_s": 3,
            "checkpoint": {"store": "dynamodb", "table": "tierwise-dev-agent-ticket-triage", "ttl_days": 14},
            "router_url": f"{router}/v1", "models": ["tiny"],
            "tools": {"kb-search": tools.url, "issue-refund": tools.url}, "approval_required": ["issue-refund"],
            "guardrails_url": guardrails}))
        agent_env = {**AWS_ENV, "TIERWISE_AGENT_CONFIG_PATH": str(tmp_path / "agent.json"), "TIERWISE_AGENT_ROUTER_API_KEY": KEY,
                     "TIERWISE_AGENT_AWS_ENDPOINT_URL": moto, "TIERWISE_AGENT_RECEIVE_WAIT_S": "1",
                     "TIERWISE_AGENT_APPROVAL_POLL_S": "0.2", "TIERWISE_AGENT_HEARTBEAT_PATH": str(tmp_path / "heartbeat")}
        yield {"sqs": sqs, "ddb": ddb, "queue_url": queue_url, "guardrails": guardrails, "agent_env": agent_env,
               "vllm": vllm, "tools": tools, "tmp": tmp_path}
    finally:
        for p in reversed(procs):
            p.stop()


def _checkpoint(p: dict, task_id: str) -> dict | None:
    item = p["ddb"].get_item(TableName="tierwise-dev-agent-ticket-triage", Key={"task_id": {"S": task_id}},
                             ConsistentRead=True).get("Item")
    return None if item is None else {"version": int(item["version"]["N"]), **json.loads(item["state"]["S"])}


def test_agent_killed_while_waiting_for_approval_resumes_without_repeating_steps(platform):
    p = platform
    p["sqs"].send_message(QueueUrl=p["queue_url"], MessageBody=json.dumps({
        "task_id": "T-1", "ticket": "Order 42 arrived broken, I want my money back", "order_id": "42", "refund_usd": 19.99}))

    first = start([str(AGENT_VENV / "tierwise-agent"), "run"], p["agent_env"], p["tmp"] / "agent-1.log")
    try:
        ck = wait_until(lambda: (c := _checkpoint(p, "T-1")) and c["pending"].get("approval:issue-refund") and c,
                        what="the agent to request approval", proc=first.popen)
        # mid-task: plan and knowledge search are done and checkpointed, the refund waits for a human
        assert list(ck["steps"]) == ["plan", "tool:kb-search"] and ck["status"] == "running"
        ticket = ck["pending"]["approval:issue-refund"]
        assert _get(f"{p['guardrails']}/v1/tickets/{ticket}")["status"] == "pending"
        assert p["vllm"].count("/v1/chat/completions") == 1 and p["tools"].count("/v1/retrieve") == 1
        assert p["tools"].count("/v1/refunds") == 0
        os.killpg(first.popen.pid, signal.SIGKILL)
        assert first.popen.wait(10) == -signal.SIGKILL
    finally:
        first.stop()

    # a human approves while no agent is running; the message reappears after its visibility timeout
    _post(f"{p['guardrails']}/v1/tickets/{ticket}/approve", {"reviewer": "oncall@example.com", "note": "eligible"})
    # Start the second agent only once SQS shows the message again (its visibility timeout ran out):
    # an event, not a sleep, so the idle-exit below cannot race the redelivery.
    wait_until(lambda: int(p["sqs"].get_queue_attributes(QueueUrl=p["queue_url"], AttributeNames=["ApproximateNumberOfMessages"])
                           ["Attributes"]["ApproximateNumberOfMessages"]) >= 1, what="the message to become visible again")
    second = start([str(AGENT_VENV / "tierwise-agent"), "run"], {**p["agent_env"], "TIERWISE_AGENT_EXIT_AFTER_IDLE_RECEIVES": "3"},
                   p["tmp"] / "agent-2.log")
    try:
        assert second.popen.wait(90) == 0, (p["tmp"] / "agent-2.log").read_text()[-3000:]
    finally:
        second.stop()

    ck = _checkpoint(p, "T-1")
    assert ck["status"] == "done" and ck["pending"] == {}
    assert list(ck["steps"]) == ["plan", "tool:kb-search", "approval:issue-refund", "tool:issue-refund", "reply", "result"]
    assert ck["steps"]["approval:issue-refund"] == {"ticket_id": ticket, "status": "approved", "reviewer": "oncall@example.com"}
    assert ck["steps"]["result"]["refund"] == {"refund_id": "rf-1", "amount_usd": 19.99}
    # every step ran exactly once across both processes
    assert p["vllm"].count("/v1/chat/completions") == 2  # plan (first run) + reply (second run)
    assert p["tools"].count("/v1/retrieve") == 1 and p["tools"].count("/v1/refunds") == 1
    refund_call = next(c for c in p["tools"].calls if c[1] == "/v1/refunds")
    assert {k.lower(): v for k, v in refund_call[3].items()}["idempotency-key"] == "T-1:tool:issue-refund"
    tickets = _get(f"{p['guardrails']}/v1/tickets?status=all")
    assert [t["id"] for t in tickets] == [ticket]  # no second approval request after the restart
    # the second agent's log lines follow the shared convention (docs/logging.md) and say what it skipped
    lines = check_lines("\n".join(ln for ln in (p["tmp"] / "agent-2.log").read_text().splitlines() if ln.startswith("{")))
    assert {ln["service"] for ln in lines} == {"tierwise-agents"}
    assert ["plan", "tool:kb-search"] == [ln["step"] for ln in lines if ln["event"] == "step_skipped"]
    assert [ln["tasks_done"] for ln in lines if ln["event"] == "exit"] == [1]
    # the queue is drained and the router metered both calls to the agent's own principal
    attrs = p["sqs"].get_queue_attributes(QueueUrl=p["queue_url"], AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
    ledger = (p["tmp"] / "ledger.jsonl").read_text()
    assert ledger.count(PRINCIPAL) == 2
