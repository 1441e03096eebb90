"""Shared test helpers (importable: tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import itertools

from tierwise_rag.access import TeamGrant
from tierwise_rag.settings import Settings

GRANTS = {
    "platform": TeamGrant(admin=["*"]),
    "support": TeamGrant(read=["support-*", "shared"], write=["support-news"]),
    "billing": TeamGrant(read=["billing-*"]),
}
KEYS = {"platform": "key-platform-0123456789", "support": "key-support-0123456789", "billing": "key-billing-0123456789"}


class FakeClock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def auth(team: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[team]}"}


def make_settings(**over) -> Settings:
    teams = {name: {"api_key": KEYS[name], **GRANTS[name].model_dump()} for name in GRANTS}
    base = {"embedder": "hashing", "teams": teams, "chunk_max_tokens": 64, "chunk_overlap_tokens": 8}
    base.update(over)
    return Settings(**base)


_ids = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


# A real S3 event-notification record (shape per the S3 docs), key URL-encoded as S3 sends it.
EVENT_PUT = """{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-west-2","eventTime":"2026-11-21T12:00:00.000Z",
"eventName":"ObjectCreated:Put","userIdentity":{"principalId":"AWS:AIDAEXAMPLE"},"requestParameters":{"sourceIPAddress":"127.0.0.1"},
"responseElements":{"x-amz-request-id":"C3D13FE58DE4C810","x-amz-id-2":"FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
"s3":{"s3SchemaVersion":"1.0","configurationId":"news-to-rag","bucket":{"name":"kb-bucket","ownerIdentity":{"principalId":"A3NL1KOZZKExample"},
"arn":"arn:aws:s3:::kb-bucket"},"object":{"key":"news/status+page.md","size":22,"eTag":"d41d8cd98f00b204e9800998ecf8427e",
"versionId":"3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY","sequencer":"0055AED6DCD90281E5"}}}]}"""
