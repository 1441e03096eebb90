"""The step runtime with in-memory fakes (no sockets): checkpoint after each step, skip completed steps,
approval fails closed, undeclared tools and models are refused."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tierwise_agents.approvals import ApprovalUnavailable, GuardrailsApprovals
from tierwise_agents.checkpoint import CheckpointConflict, TaskState
from tierwise_agents.config import AgentConfig
from tierwise_agents.example.agent import TriageAgent
from tierwise_agents.runtime import Clients, Worker

CFG = AgentConfig(agent="a", team="t", router_principal="t:agent:a", region="us-west-2", queue_url="q",
                  checkpoint={"store": "dynamodb", "table": "tb"}, router_url="http://router/v1", models=["tiny"],
                  tools={"kb-search": "http://kb", "issue-refund": "http://refunds"}, approval_required=["issue-refund"],
                  guardrails_url="http://guardrails")


class MemStore:
    def __init__(self):
        self.items: dict[str, str] = {}
        self.saves = 0

    def load(self, task_id):
        raw = self.items.get(task_id)
        if raw is None:
            return TaskState(task_id)
        v, d = json.loads(raw)
        return TaskState(task_id, v, d["status"], d["steps"], d["pending"])

    def save(self, st):
        cur = json.loads(self.items[st.task_id])[0] if st.task_id in self.items else 0
        if cur != st.version:
            raise CheckpointConflict("moved")
        st.version += 1
        self.items[st.task_id] = json.dumps([st.version, json.loads(st.to_json())])
        self.saves += 1


class FakeLLM:
    def __init__(self):
        self.calls = []
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self.create))

    def create(self, **kw):
        self.calls.append(kw)
        return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content=f"answer {len(self.calls)}"))])


class FakeHttp:
    def __init__(self, approve="approved", check_status=202):
        self.posts, self.approve, self.check_status = [], approve, check_status

    def post(self, url, json=None, headers=None):
        self.posts.append((url, json, headers))
        if url.endswith("/v1/check"):
            body = {"ticket_id": "tk-1", "decision": "escalate"} if self.check_status == 202 else {"decision": "allow"}
            return _Resp(self.check_status, body)
        return _Resp(200, {"ok": url})

    def get(self, url):
        return _Resp(200, {"id": "tk-1", "status": self.approve, "reviewer": "r"})


class _Resp:
    def __init__(self, status, body):
        self.status_code, self._body, self.headers = status, body, {"content-type": "application/json"}

    def json(self):
        return self._body

    def raise_for_status(self):
        if self.status_code >= 400:
            raise RuntimeError(self.status_code)


class FakeSqs:
    def __init__(self, bodies):
        self.msgs = [{"Body": json.dumps(b), "ReceiptHandle": f"r{i}"} for i, b in enumerate(bodies)]
        self.deleted, self.extended = [], 0

    def receive_message(self, **kw):
        return {"Messages": [self.msgs.pop(0)]} if self.msgs else {}

    def delete_message(self, **kw):
        self.deleted.append(kw["ReceiptHandle"])

    def change_message_visibility(self, **kw):
        self.extended += 1


def worker(sqs, http=None, store=None, llm=None):
    http = http or FakeHttp()
    clients = Clients(sqs=sqs, llm=llm or FakeLLM(), http=http, store=store or MemStore(),
                      approvals=GuardrailsApprovals(http, "http://guardrails", "agent-approval"))
    return Worker(CFG, clients, TriageAgent(), receive_wait_s=0, approval_poll_s=0.0, exit_after_idle_receives=1), clients


TASK = {"task_id": "T", "ticket": "broken", "order_id": "1", "refund_usd": 5}


def test_runs_every_step_once_checkpoints_each_and_deletes_the_message():
    sqs = FakeSqs([TASK])
    w, c = worker(sqs)
    assert w.run() == 1
    st = c.store.load("T")
    assert st.status == "done" and list(st.steps) == ["plan", "tool:kb-search", "approval:issue-refund", "tool:issue-refund",
                                                      "reply", "result"]
    assert c.store.saves == 7  # 5 steps + ticket requested + result
    assert sqs.deleted == ["r0"] and len(c.llm.calls) == 2


def test_resume_skips_completed_steps():
    store = MemStore()
    st = TaskState("T")
    st.steps = {"plan": "old plan", "tool:kb-search": {"chunks": []}}
    store.save(st)
    sqs = FakeSqs([TASK])
    w, c = worker(sqs, store=store)
    w.run()
    assert len(c.llm.calls) == 1  # only the reply
    assert not [p for p in c.http.posts if p[0].endswith("/v1/retrieve")]
    assert store.load("T").steps["result"]["plan"] == "old plan"


def test_a_finished_task_redelivered_is_only_deleted():
    store = MemStore()
    st = TaskState("T", status="done")
    store.save(st)
    sqs = FakeSqs([TASK])
    w, c = worker(sqs, store=store)
    w.run()
    assert sqs.deleted == ["r0"] and c.llm.calls == [] and c.http.posts == []


def test_denied_approval_never_calls_the_tool():
    sqs = FakeSqs([TASK])
    w, c = worker(sqs, http=FakeHttp(approve="denied"))
    w.run()
    assert not [p for p in c.http.posts if p[0].endswith("/v1/refunds")]
    assert "denied" in c.store.load("T").steps["result"]


def test_fails_closed_when_guardrails_opens_no_ticket():
    w, c = worker(FakeSqs([TASK]), http=FakeHttp(check_status=200))
    with pytest.raises(ApprovalUnavailable):
        w.run()
    assert not [p for p in c.http.posts if p[0].endswith("/v1/refunds")]


def test_fails_on_undeclared_tool_or_model():
    from tierwise_agents.runtime import TaskContext

    c = worker(FakeSqs([]))[1]
    ctx = TaskContext(CFG, c, TaskState("X"), lambda: None, 0)
    with pytest.raises(ValueError, match="not declared"):
        ctx.tool("shell", "/run", {})
    with pytest.raises(ValueError, match="not declared"):
        ctx.llm("x", [{"role": "user", "content": "hi"}], model="gpt-4o")


def test_a_stale_writer_gets_a_conflict():
    store = MemStore()
    a, b = store.load("T"), store.load("T")
    store.save(a)
    with pytest.raises(CheckpointConflict):
        store.save(b)


def test_alive_probe(tmp_path, monkeypatch):
    from tierwise_agents.cli import main

    monkeypatch.setenv("TIERWISE_AGENT_HEARTBEAT_PATH", str(tmp_path / "hb"))
    assert main(["alive"]) == 1
    (tmp_path / "hb").touch()
    assert main(["alive", "--max-age-s", "60"]) == 0


def test_router_key_is_read_from_the_mounted_secret_file(tmp_path, monkeypatch):
    from tierwise_agents.settings import Settings

    (tmp_path / "tierwise_agent_router_api_key").write_text("k-from-file")
    monkeypatch.delenv("TIERWISE_AGENT_ROUTER_API_KEY", raising=False)
    monkeypatch.setenv("TIERWISE_AGENT_SECRETS_DIR", str(tmp_path))
    assert Settings().router_api_key.get_secret_value() == "k-from-file"


def test_log_lines_follow_the_shared_convention(capsys):
    from tierwise_logs import check_lines

    from tierwise_agents.cli import SERVICE, configure_logging

    configure_logging()
    w, _ = worker(FakeSqs([TASK]))
    capsys.readouterr()
    assert w.run() == 1
    lines = check_lines(capsys.readouterr().out)  # raises on any line that breaks the convention
    assert {(ln["service"], ln["logger"]) for ln in lines} == {("tierwise-agents", "tierwise.agent")} and SERVICE == "tierwise-agents"
    assert [ln["event"] for ln in lines][:2] == ["task_start", "step_done"] and lines[-1]["event"] == "task_done"
    assert [ln["step"] for ln in lines if ln["event"] == "step_done"] == [
        "plan", "tool:kb-search", "approval:issue-refund", "tool:issue-refund", "reply"]
    assert all(ln["task_id"] == "T" for ln in lines)
