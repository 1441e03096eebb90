from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from qdrant_client import QdrantClient

from tierwise_rag.access import AccessPolicy, TeamGrant
from tierwise_rag.app import create_app
from tierwise_rag.chunking import ChunkingConfig
from tierwise_rag.embedding import HashingEmbedder
from tierwise_rag.engine import KnowledgeBase
from tierwise_rag.rerank import ConvexCombinationReranker
from tierwise_rag.settings import Settings
from tierwise_rag.store import Store

GRANTS = {
    "platform": TeamGrant(admin=["*"]),
    "support": TeamGrant(read=["support-*", "shared"], write=["support-news"]),
    "billing": TeamGrant(read=["billing-*"]),
}


class FakeClock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_kb(clock: FakeClock) -> Iterator[Callable[..., KnowledgeBase]]:
    made: list[KnowledgeBase] = []

    def factory(client: QdrantClient | None = None, **kw) -> KnowledgeBase:
        kw.setdefault("chunking", ChunkingConfig(64, 8))
        kw.setdefault("reranker", ConvexCombinationReranker())
        kb = KnowledgeBase(Store(client or QdrantClient(":memory:"), local=True), kw.pop("embedder", HashingEmbedder()),
                           AccessPolicy(GRANTS), clock=clock, **kw)
        kb.open()
        made.append(kb)
        return kb

    yield factory


@pytest.fixture
def kb(make_kb) -> KnowledgeBase:
    return make_kb()


KEYS = {"platform": "key-platform-0123456789", "support": "key-support-0123456789", "billing": "key-billing-0123456789"}


def auth(team: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[team]}"}


def make_settings(**over) -> Settings:
    teams = {name: {"api_key": KEYS[name], **GRANTS[name].model_dump()} for name in GRANTS}
    base = {"embedder": "hashing", "teams": teams, "chunk_max_tokens": 64, "chunk_overlap_tokens": 8}
    base.update(over)
    return Settings(**base)


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(make_settings())) as c:
        yield c


_ids = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"
