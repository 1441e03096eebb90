"""Wire schemas. Requests accept (and log) unknown fields; errors use an OpenAI-style envelope.

Responses are the engine's own dataclasses (``engine.CheckResult``, ``review_queue.Ticket``), used as
FastAPI response models directly, so there is no second copy to keep in sync."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


Channel = Literal["user", "tool", "document"]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | None = None
    # Where the content came from. Omitted: "tool" for role "tool", else the request's channel.
    channel: Channel | None = None


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    direction: Literal["input", "output"]
    text: str | None = None
    messages: list[ChatMessage] | None = None
    team: str = Field("", max_length=128)
    context: dict[str, Any] = Field(default_factory=dict)
    # user: typed by the person; tool: a tool result; document: retrieved text (RAG). Tool output and
    # documents are scored for instructions addressed to the model, quoted or not.
    channel: Channel = "user"

    @model_validator(mode="after")
    def _one_of(self) -> "CheckRequest":
        if (self.text is None) == (self.messages is None):
            raise ValueError("give exactly one of 'text' or 'messages'")
        return self


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reviewer: str = Field(..., min_length=1, max_length=128)
    note: str | None = Field(None, max_length=2000)


def error_body(message: str, type_: str, code: str | int | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}
