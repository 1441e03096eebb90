"""A synthetic Tier-2 task for tests, demos and the benchmark: support-ticket triage.

The "teacher" answers ``queue <label>`` for a ticket that mentions one of a label's key phrases
among filler words. A randomly initialised tiny model fails it completely; a LoRA adapter learns it
in a few hundred CPU steps and generalises to held-out fillers (the eval split). Records use the
``tierwise.tier2-exchange/v1`` export format, with some noise the pipeline must handle: exact and
whitespace-only duplicates, a record without consent, a truncated teacher answer, PII in prompts.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

LABELS = {
    "billing": ["my invoice", "the billing cycle", "a charge on my card", "the monthly bill"],
    "refund": ["a refund", "my money back", "returning the order", "a chargeback"],
    "password": ["my password", "the login page", "a reset link", "two factor codes"],
    "outage": ["the service is down", "an outage", "errors on every page", "the site not loading"],
}
FILLERS = ["hello", "please help", "today", "again", "thanks", "urgent", "since monday", "team",
           "kindly", "asap", "hi there", "question", "my account", "this week", "sorry", "quick one"]


def ticket(rng: random.Random, label: str) -> str:
    a, b = rng.sample(FILLERS, 2)
    return f"ticket: {a} {rng.choice(LABELS[label])} {b}"


def record(i: int, prompt: str, label: str, *, task: str = "triage", consent: bool = True,
           finish_reason: str = "stop", reference: bool = True) -> dict[str, Any]:
    return {"schema": "tierwise.tier2-exchange/v1", "request_id": f"req-{i:05d}",
            "ts": f"2026-11-{1 + i % 28:02d}T10:{i % 60:02d}:00Z", "team": "support-team", "task": task,
            "teacher_model": "claude-haiku", "consent": consent,
            "messages": [{"role": "user", "content": prompt}], "response": f"queue {label}",
            **({"reference": f"queue {label}"} if reference else {}), "finish_reason": finish_reason}


def exports(n: int = 160, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    labels = sorted(LABELS)
    for i in range(n):
        label = labels[i % len(labels)]
        out.append(record(i, ticket(rng, label), label, reference=i % 3 != 0))
    # noise the pipeline must remove or clean
    out.append(dict(out[0], request_id="req-dup-exact", ts="2026-12-01T00:00:00Z"))
    out.append(dict(out[1], request_id="req-dup-space", ts="2026-12-01T00:00:00Z",
                    messages=[{"role": "user", "content": "  " + out[1]["messages"][0]["content"].upper() + "  "}]))
    out.append(record(n + 1, ticket(rng, "refund"), "refund", consent=False))
    out.append(record(n + 2, ticket(rng, "outage"), "outage", finish_reason="length"))
    out.append(record(n + 3, "ticket: mail jane.doe@example.com about my invoice", "billing"))
    return out


def guard_cases() -> list[dict[str, Any]]:
    return [{"task": "triage", "prompt": f"ticket: {phrase}", "reference": f"queue {label}"}
            for label, phrases in sorted(LABELS.items()) for phrase in phrases[:2]]


def write_exports(path: str | Path, n: int = 160, seed: int = 0) -> Path:
    p = Path(path)
    p.write_text("".join(json.dumps(r) + "\n" for r in exports(n, seed)))
    return p


def write_guard(path: str | Path) -> Path:
    p = Path(path)
    p.write_text("".join(json.dumps(r) + "\n" for r in guard_cases()))
    return p
