"""Human approval through the guardrails escalation API.

`POST {guardrails}/v1/check` under the approval policy answers 202 with a `ticket_id` (and a
`Location: /v1/tickets/{id}`); a reviewer decides the ticket; `GET /v1/tickets/{id}` returns
`pending`, `approved` or `denied`. Fail closed: anything but a 202 with a ticket is an error, never an approval.
"""

from __future__ import annotations

import json

import httpx


class ApprovalUnavailable(Exception):
    """The guardrails service did not open a review ticket; the tool call must not proceed."""


class GuardrailsApprovals:
    def __init__(self, client: httpx.Client, base_url: str, policy: str) -> None:
        self._http = client
        self._base = base_url.rstrip("/")
        self._policy = policy

    def request(self, *, agent: str, team: str, task_id: str, tool: str, arguments: dict) -> str:
        text = f"agent {agent} (team {team}) asks to call tool {tool!r} for task {task_id} with arguments:\n" + \
            json.dumps(arguments, sort_keys=True, indent=2)
        r = self._http.post(f"{self._base}/v1/check", json={
            "direction": "input", "text": text, "team": self._policy,
            "context": {"agent": agent, "agent_team": team, "task_id": task_id, "tool": tool, "kind": "tool-approval"}},
            headers={"x-request-id": f"{task_id}:{tool}"})
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        if r.status_code != 202 or not body.get("ticket_id"):
            raise ApprovalUnavailable(f"guardrails answered {r.status_code} (decision {body.get('decision')!r}) without a "
                                      f"review ticket for tool {tool!r}; check the {self._policy!r} policy")
        return str(body["ticket_id"])

    def status(self, ticket_id: str) -> dict:
        r = self._http.get(f"{self._base}/v1/tickets/{ticket_id}")
        r.raise_for_status()
        return r.json()
