"""tierwise guardrails: PII/PHI redaction, prompt-injection detection, human escalation, audit.

In-process use (the router may call it without HTTP)::

    from tierwise_guardrails import Guard
    guard = Guard.from_settings()          # loads spaCy + the classifier once; reuse it
    result = guard.check("input", text="My SSN is 123-45-6788", team="payments")
    result.decision, result.redacted_text

Importing this package is cheap: spaCy, numpy models, FastAPI and boto3 load only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Guard", "CheckResult", "Settings", "create_app"]
__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from tierwise_guardrails.app import create_app
    from tierwise_guardrails.engine import CheckResult, Guard
    from tierwise_guardrails.settings import Settings


def __getattr__(name: str) -> Any:
    if name in ("Guard", "CheckResult"):
        from tierwise_guardrails import engine

        return getattr(engine, name)
    if name == "Settings":
        from tierwise_guardrails.settings import Settings

        return Settings
    if name == "create_app":
        from tierwise_guardrails.app import create_app

        return create_app
    raise AttributeError(name)
