"""IAM policy documents as data: statements in, a deterministic JSON string out.

Terraform tokens (`${aws_sqs_queue.x.arn}`) may appear inside; cdktn resolves them in place.
Policies are rendered with sorted keys so synth output is byte-identical run to run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Statement:
    actions: list[str]
    resources: list[str]
    sid: str | None = None
    effect: str = "Allow"
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Effect": self.effect, "Action": sorted(self.actions), "Resource": self.resources}
        if self.sid:
            out["Sid"] = self.sid
        if self.conditions:
            out["Condition"] = self.conditions
        return out


def policy_document(statements: list[Statement]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [s.render() for s in statements]}, sort_keys=True)


def service_trust(service: str, conditions: dict[str, dict[str, Any]] | None = None, actions: list[str] | None = None) -> str:
    stmt: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": actions or ["sts:AssumeRole"],
    }
    if conditions:
        stmt["Condition"] = conditions
    return json.dumps({"Version": "2012-10-17", "Statement": [stmt]}, sort_keys=True)
