"""Wire schemas. Requests accept (and log) unknown fields; errors use an OpenAI-style envelope."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | None = None


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    direction: Literal["input", "output"]
    text: str | None = None
    messages: list[ChatMessage] | None = None
    team: str = Field("", max_length=128)
    context: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_of(self) -> "CheckRequest":
        if (self.text is None) == (self.messages is None):
            raise ValueError("give exactly one of 'text' or 'messages'")
        return self


class FindingOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    start: int
    end: int
    score: float
    detector: str
    action: str


class CheckResponse(BaseModel):
    request_id: str
    decision: Literal["allow", "redact", "block", "escalate"]
    direction: Literal["input", "output"]
    team: str
    findings: list[FindingOut]
    redacted_text: str | None = None
    redacted_messages: list[dict[str, Any]] | None = None
    injection_score: float | None = None
    ticket_id: str | None = None
    timing_ms: dict[str, float]


class TicketOut(BaseModel):
    id: str
    status: Literal["pending", "approved", "denied"]
    created_at: float
    team: str
    direction: str
    reason: str
    redacted_text: str
    findings: list[dict[str, Any]]
    reviewer: str | None = None
    note: str | None = None
    decided_at: float | None = None


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reviewer: str = Field(..., min_length=1, max_length=128)
    note: str | None = Field(None, max_length=2000)


def error_body(message: str, type_: str, code: str | int | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}
