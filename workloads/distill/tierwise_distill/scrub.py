"""PII scrubbing of training text before it becomes a dataset.

- ``GuardrailsHttpScrubber``: the real thing — the guardrails service's ``POST /v1/check`` contract
  (``{"direction": "input", "text": ...}`` → ``decision`` + ``redacted_text``). ``block`` and
  ``escalate`` drop the example; ``redact`` keeps the redacted text. Services never import each
  other, so this goes over HTTP.
- ``FallbackRegexScrubber``: a deliberately named stand-in for machines without the guardrails
  service: validated e-mail, phone, card (Luhn), IBAN-ish, IPv4 and US SSN patterns only — no names,
  no addresses. Datasets record which scrubber ran (``manifest.scrubber``) so a fallback-scrubbed
  dataset is visible as such; ``--require-guardrails`` refuses to build without the service.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

import httpx


@dataclass(frozen=True)
class ScrubResult:
    text: str | None  # None: drop the example
    findings: int
    reason: str = ""


class Scrubber(Protocol):
    name: str

    def scrub(self, text: str) -> ScrubResult: ...


def _luhn(digits: str) -> bool:
    total, alt = 0, False
    for ch in reversed(digits):
        d = int(ch)
        if alt:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        alt = not alt
    return total % 10 == 0


class FallbackRegexScrubber:
    name = "fallback-regex"
    _patterns = [
        ("EMAIL", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")),
        ("CREDIT_CARD", re.compile(r"\b(?:\d[ -]?){12,18}\d\b")),
        ("IBAN", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,4})?\b")),
        ("US_SSN", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
        ("IP_ADDRESS", re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b")),
        ("PHONE_NUMBER", re.compile(r"(?<![\w])\+?\d[\d ()./-]{7,}\d\b")),
    ]

    def scrub(self, text: str) -> ScrubResult:
        n = 0
        for tag, pat in self._patterns:
            def sub(m: re.Match[str], tag: str = tag) -> str:
                nonlocal n
                digits = re.sub(r"\D", "", m.group(0))
                if tag == "CREDIT_CARD" and not _luhn(digits):
                    return m.group(0)
                if tag == "PHONE_NUMBER" and not 8 <= len(digits) <= 15:  # E.164: at most 15 digits
                    return m.group(0)
                n += 1
                return f"<{tag}>"
            text = pat.sub(sub, text)
        return ScrubResult(text, n)


class GuardrailsHttpScrubber:
    name = "guardrails-http"

    def __init__(self, url: str, *, team: str = "distill", timeout_s: float = 10.0,
                 client: httpx.Client | None = None) -> None:
        self.url = url.rstrip("/") + "/v1/check"
        self.team = team
        self._client = client or httpx.Client(timeout=timeout_s)

    def scrub(self, text: str) -> ScrubResult:
        r = self._client.post(self.url, json={"direction": "input", "text": text, "team": self.team,
                                              "context": {"purpose": "distillation-dataset"}})
        if r.status_code not in (200, 202):
            raise RuntimeError(f"guardrails {self.url} answered {r.status_code}: {r.text[:200]}")
        body = r.json()
        decision = body.get("decision")
        n = len(body.get("findings") or [])
        if decision in ("block", "escalate"):
            return ScrubResult(None, n, f"guardrails_{decision}")
        if decision == "redact":
            return ScrubResult(body.get("redacted_text") or "", n)
        if decision == "allow":
            return ScrubResult(text, n)
        raise RuntimeError(f"guardrails {self.url}: unexpected decision {decision!r}")

    def close(self) -> None:
        self._client.close()
