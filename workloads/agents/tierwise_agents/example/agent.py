"""`TriageAgent`: the reference agent program.

For one support ticket: (1) ask a model through the router for a plan, (2) search the knowledge base
(a declared in-cluster tool), (3) issue a refund (a flagged tool: a human approves it first through the
guardrails escalation API), (4) ask the model for the reply to the customer. Every step is checkpointed.
"""

from __future__ import annotations

from typing import Any

from tierwise_agents.runtime import TaskContext

SEARCH_TOOL = "kb-search"
REFUND_TOOL = "issue-refund"


class TriageAgent:
    def run(self, ctx: TaskContext, task: dict[str, Any]) -> dict[str, Any]:
        ticket = str(task["ticket"])
        plan = ctx.llm("plan", [{"role": "system", "content": "You triage support tickets. Answer with a short plan."},
                                {"role": "user", "content": ticket}])
        hits = ctx.tool(SEARCH_TOOL, "/v1/retrieve", {"query": ticket, "top_k": 3})
        refund = None
        if task.get("refund_usd"):
            refund = ctx.tool(REFUND_TOOL, "/v1/refunds", {"order_id": task.get("order_id"), "amount_usd": task["refund_usd"]})
        reply = ctx.llm("reply", [{"role": "system", "content": f"Plan: {plan}"},
                                  {"role": "user", "content": f"Ticket: {ticket}\nContext: {hits}\nRefund: {refund}"}])
        return {"plan": plan, "reply": reply, "refund": refund}
