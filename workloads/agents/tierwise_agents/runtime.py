"""The agent loop: receive a task from SQS, run the agent program step by step, checkpoint after each
step, delete the message when the task is done.

Crash safety: the message is deleted only after the final checkpoint, so a killed agent's message
reappears after its visibility timeout and the next worker resumes from the checkpoint. A completed
step is never run again (its stored output is returned instead). Tool calls carry an
`Idempotency-Key` of `<task>:<step>`, so a crash between a call and its checkpoint is safe for tools
that honour the header.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import httpx

from .approvals import GuardrailsApprovals
from .checkpoint import DynamoCheckpointStore, TaskState
from .config import AgentConfig

log = logging.getLogger("tierwise.agent")


class ApprovalDenied(Exception):
    pass


class Program(Protocol):
    """An agent program: a deterministic sequence of `ctx.step(...)` calls for one task."""

    def run(self, ctx: "TaskContext", task: dict[str, Any]) -> Any: ...


@dataclass
class Clients:
    sqs: Any
    llm: Any  # openai.OpenAI pointed at the router
    http: httpx.Client
    store: DynamoCheckpointStore
    approvals: GuardrailsApprovals | None


class TaskContext:
    def __init__(self, cfg: AgentConfig, clients: Clients, state: TaskState, on_wait: Callable[[], None],
                 poll_s: float, sleep: Callable[[float], None] = time.sleep) -> None:
        self.cfg, self.c, self.state = cfg, clients, state
        self._on_wait, self._poll_s, self._sleep = on_wait, poll_s, sleep
        self.executed: list[str] = []  # steps run in this process (not replayed from the checkpoint)

    @property
    def task_id(self) -> str:
        return self.state.task_id

    def step(self, name: str, fn: Callable[[], Any]) -> Any:
        """Run `fn` once per task: a completed step returns its checkpointed output."""
        if name in self.state.steps:
            log.info("step_skipped", extra={"task_id": self.task_id, "step": name})
            return self.state.steps[name]
        out = fn()
        self.state.steps[name] = out
        self.c.store.save(self.state)
        self.executed.append(name)
        log.info("step_done", extra={"task_id": self.task_id, "step": name, "version": self.state.version})
        return out

    # -- capabilities ------------------------------------------------------------------------------
    def llm(self, name: str, messages: list[dict[str, str]], *, model: str | None = None, max_tokens: int = 128) -> str:
        """One chat completion through the router (the only way an agent reaches a model)."""
        model = model or self.cfg.models[0]
        if model not in self.cfg.models:
            raise ValueError(f"model {model!r} is not declared for agent {self.cfg.agent} ({self.cfg.models})")

        def call() -> str:
            r = self.c.llm.chat.completions.create(model=model, messages=messages, max_tokens=max_tokens,
                                                   extra_headers={"x-request-id": f"{self.task_id}:{name}"})
            return r.choices[0].message.content or ""
        return self.step(name, call)

    def tool(self, tool: str, path: str, payload: dict[str, Any], *, step: str | None = None) -> Any:
        """POST to a declared tool; asks for human approval first when the tool is flagged."""
        if tool not in self.cfg.tools:
            raise ValueError(f"tool {tool!r} is not declared for agent {self.cfg.agent} ({sorted(self.cfg.tools)})")
        name = step or f"tool:{tool}"
        if tool in self.cfg.approval_required:
            self.approval(tool, payload)

        def call() -> Any:
            r = self.c.http.post(self.cfg.tools[tool].rstrip("/") + path, json=payload,
                                 headers={"Idempotency-Key": f"{self.task_id}:{name}"})
            r.raise_for_status()
            return r.json()
        return self.step(name, call)

    def approval(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Block until a human approves this tool call; the ticket id is checkpointed as soon as it exists."""
        name = f"approval:{tool}"
        if name in self.state.steps:
            return self.state.steps[name]
        if self.c.approvals is None:
            raise RuntimeError(f"tool {tool!r} needs approval but no guardrails_url is configured")
        ticket = self.state.pending.get(name)
        if ticket is None:
            ticket = self.c.approvals.request(agent=self.cfg.agent, team=self.cfg.team, task_id=self.task_id,
                                              tool=tool, arguments=arguments)
            self.state.pending[name] = ticket
            self.c.store.save(self.state)
            log.info("approval_requested", extra={"task_id": self.task_id, "tool": tool, "ticket_id": ticket})
        while True:
            t = self.c.approvals.status(ticket)
            if t["status"] != "pending":
                break
            self._on_wait()
            self._sleep(self._poll_s)
        outcome = {"ticket_id": ticket, "status": t["status"], "reviewer": t.get("reviewer")}
        self.state.pending.pop(name, None)
        self.step(name, lambda: outcome)
        if t["status"] != "approved":
            raise ApprovalDenied(f"tool {tool!r} for task {self.task_id}: ticket {ticket} was {t['status']}")
        return outcome


class Worker:
    def __init__(self, cfg: AgentConfig, clients: Clients, program: Program, *, receive_wait_s: int = 20,
                 approval_poll_s: float = 2.0, heartbeat: Path | None = None,
                 exit_after_idle_receives: int | None = None) -> None:
        self.cfg, self.c, self.program = cfg, clients, program
        self.receive_wait_s, self.poll_s = receive_wait_s, approval_poll_s
        self.heartbeat, self.exit_after_idle = heartbeat, exit_after_idle_receives

    def beat(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.touch()

    def run(self) -> int:
        """Process tasks until told to stop; returns the number of tasks finished."""
        done = idle = 0
        while True:
            self.beat()
            msgs = self.c.sqs.receive_message(QueueUrl=self.cfg.queue_url, MaxNumberOfMessages=1,
                                              WaitTimeSeconds=self.receive_wait_s,
                                              VisibilityTimeout=self.cfg.visibility_timeout_s).get("Messages", [])
            if not msgs:
                idle += 1
                if self.exit_after_idle is not None and idle >= self.exit_after_idle:
                    return done
                continue
            idle = 0
            if self.handle(msgs[0]):
                done += 1

    def handle(self, msg: dict[str, Any]) -> bool:
        task = json.loads(msg["Body"])
        task_id = str(task["task_id"])
        state = self.c.store.load(task_id)
        receipt = msg["ReceiptHandle"]

        def keep_invisible() -> None:
            self.beat()
            self.c.sqs.change_message_visibility(QueueUrl=self.cfg.queue_url, ReceiptHandle=receipt,
                                                 VisibilityTimeout=self.cfg.visibility_timeout_s)

        if state.status != "done":
            log.info("task_start", extra={"task_id": task_id, "resumed_steps": sorted(state.steps)})
            ctx = TaskContext(self.cfg, self.c, state, keep_invisible, self.poll_s)
            try:
                result = self.program.run(ctx, task)
            except ApprovalDenied as e:
                result = {"denied": str(e)}
            state.steps["result"] = result
            state.status = "done"
            self.c.store.save(state)
        # done (now or by an earlier worker that died before deleting): the message is finished
        self.c.sqs.delete_message(QueueUrl=self.cfg.queue_url, ReceiptHandle=receipt)
        log.info("task_done", extra={"task_id": task_id})
        return True
