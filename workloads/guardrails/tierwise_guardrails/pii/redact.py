"""Operators applied to detected spans: ``mask``, ``tag`` (type tag) and ``hash`` (keyed hash)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Literal

from tierwise_guardrails.findings import Finding

Operator = Literal["mask", "tag", "hash"]
OPERATORS: tuple[str, ...] = ("mask", "tag", "hash")


def keyed_hash(key: bytes, value: str, length: int = 16) -> str:
    """HMAC-SHA256 of ``value``: equal values give equal tokens (joins stay possible), but the
    value cannot be recovered or brute-forced without the key."""
    return hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:length]


def replacement(op: str, finding: Finding, value: str, key: bytes) -> str:
    if op == "mask":
        return "*" * len(value)
    if op == "tag":
        return f"<{finding.type}>"
    if op == "hash":
        return f"<{finding.type}:{keyed_hash(key, value, 12)}>"
    raise ValueError(f"unknown operator {op!r}; allowed: {', '.join(OPERATORS)}")


def redact(
    text: str,
    findings: Sequence[Finding],
    operators: Mapping[str, str],
    *,
    default: str = "tag",
    key: bytes,
) -> str:
    """Replace each (disjoint) finding by its entity's operator output."""
    parts: list[str] = []
    pos = 0
    for f in sorted(findings, key=lambda f: f.start):
        if f.start < pos:  # overlapping input: the earlier span already covers it
            continue
        parts.append(text[pos : f.start])
        parts.append(replacement(operators.get(f.type, default), f, text[f.start : f.end], key))
        pos = f.end
    parts.append(text[pos:])
    return "".join(parts)
