"""The guard itself: detectors + team policy → decision, redaction, ticket, audit record.

Usable in-process (the router may call :meth:`Guard.check` directly) and behind the HTTP API.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from tierwise_guardrails.audit import AuditLog
from tierwise_guardrails.findings import Finding
from tierwise_guardrails.injection.channel import check_channel
from tierwise_guardrails.injection.detector import InjectionDetector, InjectionModel
from tierwise_guardrails.injection.v2 import InjectionDetectorV2, InjectionModelV2
from tierwise_guardrails.pii.detector import PiiDetector
from tierwise_guardrails.pii.redact import keyed_hash, redact
from tierwise_guardrails.policy import SEVERITY, PolicySet
from tierwise_guardrails.review_queue import ReviewQueue

Direction = Literal["input", "output"]
Decision = Literal["allow", "redact", "block", "escalate"]


class InputTooLarge(ValueError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"input is {size} bytes; the limit is {limit} bytes")
        self.size, self.limit = size, limit


@dataclass
class CheckResult:
    request_id: str
    decision: Decision
    direction: Direction
    team: str
    findings: list[dict[str, Any]]
    redacted_text: str | None = None
    redacted_messages: list[dict[str, Any]] | None = None
    injection_score: float | None = None
    ticket_id: str | None = None
    timing_ms: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


class Guard:
    def __init__(
        self,
        *,
        pii: PiiDetector,
        injection: InjectionDetector | InjectionDetectorV2,
        policies: PolicySet,
        key: bytes,
        audit: AuditLog | None = None,
        queue: ReviewQueue | None = None,
        max_input_bytes: int = 64 * 1024,
        clock=time.time,
    ) -> None:
        self.pii = pii
        self.injection = injection
        self.policies = policies
        self._key = key
        self.audit = audit
        self.queue = queue
        self.max_input_bytes = max_input_bytes
        self._clock = clock

    @classmethod
    def from_settings(cls, settings=None, *, with_audit: bool = True, with_queue: bool = True) -> "Guard":
        from tierwise_guardrails.review_queue import build_queue
        from tierwise_guardrails.settings import Settings

        s = settings or Settings()
        return cls(
            pii=PiiDetector(
                enable_ner=s.enable_ner, spacy_model_path=s.spacy_model_path, ner_engine=s.ner_engine, ner_gate=s.ner_gate
            ),
            injection=(InjectionDetectorV2(InjectionModelV2.load(s.injection_model_path)) if s.injection_model == "v2"
                       else InjectionDetector(InjectionModel.load(s.injection_model_path))),
            policies=PolicySet.load(s.policies_path),
            key=s.key_bytes,
            audit=AuditLog(s.resolved_audit_path, s.key_bytes) if with_audit else None,
            queue=build_queue(s) if with_queue else None,
            max_input_bytes=s.max_input_bytes,
        )

    @property
    def injection_thresholds(self) -> tuple[float, float]:
        """(escalate, block) the injection model was calibrated with."""
        th = self.injection.model.meta.get("thresholds")
        return (float(th["escalate"]), float(th["block"])) if th else (0.85, 0.95)

    def check(
        self,
        direction: Direction,
        *,
        text: str | None = None,
        messages: list[dict[str, Any]] | None = None,
        team: str = "",
        context: dict[str, Any] | None = None,
        request_id: str | None = None,
        channel: str = "user",
    ) -> CheckResult:
        """``channel`` is where ``text`` (or a message without its own ``channel``) came from: ``user``,
        ``tool`` or ``document``; messages with role ``tool`` default to ``tool``."""
        check_channel(channel)
        if direction not in ("input", "output"):
            raise ValueError(f"direction must be 'input' or 'output', got {direction!r}")
        if (text is None) == (messages is None):
            raise ValueError("give exactly one of text or messages")
        parts = [text] if text is not None else [str(m.get("content") or "") for m in messages]  # type: ignore[union-attr]
        size = sum(len(p.encode("utf-8", "surrogatepass")) for p in parts)
        if size > self.max_input_bytes:
            raise InputTooLarge(size, self.max_input_bytes)

        t0 = time.perf_counter()
        policy = self.policies.for_team(team)
        dpol = policy.input if direction == "input" else policy.output
        rid = request_id or uuid.uuid4().hex
        decision: Decision = "allow"
        out_findings: list[dict[str, Any]] = []
        redacted_parts: list[str] = []
        pii_s = inj_s = 0.0
        inj_best: float | None = None
        reasons: list[str] = []

        for i, part in enumerate(parts):
            a = time.perf_counter()
            found = self.pii.detect(part, min_score=policy.min_score)
            pii_s += time.perf_counter() - a
            to_redact: list[Finding] = []
            for f in found:
                act = dpol.action_for(f.type)
                if act != "allow":
                    to_redact.append(f)
                    if SEVERITY[act] > SEVERITY[decision]:
                        decision = act
                    if act in ("block", "escalate"):
                        reasons.append(f"{f.type}:{act}")
                d = f.as_dict() | {"action": act, "value_hmac": keyed_hash(self._key, part[f.start : f.end])}
                if messages is not None:
                    d["message_index"] = i
                out_findings.append(d)
            redacted_parts.append(redact(part, to_redact, policy.operators, default=policy.default_operator, key=self._key))

            role = messages[i].get("role") if messages is not None else None
            if dpol.check_injection and role not in ("assistant",):
                ch = check_channel((messages[i].get("channel") or ("tool" if role == "tool" else channel)) if messages is not None else channel)
                esc_t, blk_t = dpol.injection_thresholds(self.injection_thresholds)
                a = time.perf_counter()
                res = self.injection.detect(part, report_threshold=esc_t, channel=ch)
                inj_s += time.perf_counter() - a
                inj_best = res.score if inj_best is None else max(inj_best, res.score)
                for f in res.findings:
                    d = f.as_dict() | {"action": "report"}
                    if messages is not None:
                        d["message_index"] = i
                    out_findings.append(d)
                act = "block" if res.score >= blk_t else "escalate" if res.score >= esc_t else None
                if act:
                    d_act: Decision = act  # type: ignore[assignment]
                    reasons.append(f"PROMPT_INJECTION:{act}")
                    if SEVERITY[d_act] > SEVERITY[decision]:
                        decision = d_act

        result = CheckResult(
            request_id=rid,
            decision=decision,
            direction=direction,
            team=team,
            findings=out_findings,
            injection_score=None if inj_best is None else round(inj_best, 4),
        )
        if text is not None:
            result.redacted_text = redacted_parts[0]
        else:
            result.redacted_messages = [dict(m) | {"content": r} for m, r in zip(messages, redacted_parts)]  # type: ignore[arg-type]

        if decision == "escalate" and self.queue is not None:
            ticket = self.queue.submit(
                team=team,
                direction=direction,
                reason=", ".join(sorted(set(reasons))) or "escalate",
                redacted_text="\n\n".join(redacted_parts),
                findings=[{k: v for k, v in f.items() if k != "value_hmac"} for f in out_findings],
            )
            result.ticket_id = ticket.id
        result.timing_ms = {
            "pii": round(pii_s * 1000, 3),
            "injection": round(inj_s * 1000, 3),
            "total": round((time.perf_counter() - t0) * 1000, 3),
        }
        if self.audit is not None:
            self.audit.append(
                {
                    "ts": self._clock(),
                    "event": "check",
                    "request_id": rid,
                    "team": team,
                    "direction": direction,
                    "decision": decision,
                    "ticket_id": result.ticket_id,
                    "injection_score": result.injection_score,
                    "findings": out_findings,
                    "redacted": redacted_parts,
                    "context_keys": sorted((context or {}).keys()),
                    "channel": channel,
                }
            )
        return result

    def record_review(self, ticket_id: str, *, approve: bool, reviewer: str, note: str | None = None):
        """Decide a ticket and audit the outcome."""
        if self.queue is None:
            raise RuntimeError("no review queue configured")
        t = self.queue.decide(ticket_id, approve=approve, reviewer=reviewer, note=note)
        if self.audit is not None:
            self.audit.append({"ts": self._clock(), "event": "review", "ticket_id": t.id, "status": t.status, "reviewer": reviewer})
        return t
