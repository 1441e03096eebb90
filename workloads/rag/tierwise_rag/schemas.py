"""Wire schemas. Requests accept (and log) unknown fields; errors use an OpenAI-style envelope."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .models import FusionConfig, Hit

Scalar = str | int | float | bool


class WireModel(BaseModel):
    model_config = ConfigDict(extra="allow")

    def unknown_fields(self) -> list[str]:
        return sorted((self.model_extra or {}).keys())


class DocumentIn(WireModel):
    id: str = Field(min_length=1, max_length=1024)
    text: str | None = Field(None, description="the document as text")
    content_base64: str | None = Field(None, description="the document as bytes, base64; decoded with `encoding`")
    content_type: str = "text/plain"
    encoding: str = "utf-8"
    metadata: dict[str, Scalar | list[str] | list[int]] = Field(default_factory=dict)
    source_version: str | None = None

    @model_validator(mode="after")
    def _one_body(self) -> DocumentIn:
        if (self.text is None) == (self.content_base64 is None):
            raise ValueError("give exactly one of text or content_base64")
        return self


class IngestRequest(WireModel):
    collection: str
    documents: list[DocumentIn] = Field(min_length=1)
    promote: bool = Field(False, description="anchored only: promote the resulting version")


class DocResultOut(BaseModel):
    id: str
    status: str
    chunks: int = 0
    error: dict[str, str] | None = None


class IngestResponse(BaseModel):
    object: Literal["ingest.result"] = "ingest.result"
    collection: str
    kind: str
    version: str | None
    created_version: bool
    promoted: bool
    counts: dict[str, int]
    results: list[DocResultOut]


class OpenStagingRequest(WireModel):
    ttl_seconds: float | None = Field(None, gt=0, le=7 * 86400, description="expire after this long without a write; default: the service's")


class StageDocumentsRequest(WireModel):
    documents: list[DocumentIn] = Field(min_length=1)


class StageDocumentsResponse(BaseModel):
    object: Literal["staging.documents"] = "staging.documents"
    collection: str
    staging_id: str
    counts: dict[str, int]
    results: list[DocResultOut]


class CommitStagingRequest(WireModel):
    promote: bool = Field(False, description="promote the committed version (needs admin)")


class DeleteRequest(WireModel):
    ids: list[str] = Field(min_length=1)


class RetrieveRequest(WireModel):
    collections: list[str] = Field(min_length=1, max_length=32)
    query: str
    top_k: int = 10
    mode: Literal["hybrid", "bm25", "dense"] = "hybrid"
    filters: dict[str, Any] | None = None
    rerank: bool = False


class RetrieveResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Hit]
    versions: dict[str, str | None]
    timings_ms: dict[str, float]


class CreateCollectionRequest(WireModel):
    name: str
    kind: Literal["anchored", "fluid"]
    fusion: FusionConfig | None = None
    max_age_seconds: float | None = Field(None, gt=0)


class UpdateCollectionRequest(WireModel):
    fusion: FusionConfig | None = None
    max_age_seconds: float | None = Field(None, gt=0)


class PromoteRequest(WireModel):
    version: str


class RollbackRequest(WireModel):
    version: str | None = Field(None, description="target; default: the previously promoted version")


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
