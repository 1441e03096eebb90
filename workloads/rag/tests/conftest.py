from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from qdrant_client import QdrantClient
from rag_helpers import GRANTS, FakeClock, make_settings

from tierwise_rag.access import AccessPolicy
from tierwise_rag.app import create_app
from tierwise_rag.chunking import ChunkingConfig
from tierwise_rag.embedding import HashingEmbedder
from tierwise_rag.engine import KnowledgeBase
from tierwise_rag.rerank import ConvexCombinationReranker
from tierwise_rag.store import Store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_kb(clock: FakeClock) -> Callable[..., KnowledgeBase]:
    def factory(client: QdrantClient | None = None, **kw) -> KnowledgeBase:
        kw.setdefault("chunking", ChunkingConfig(64, 8))
        kw.setdefault("reranker", ConvexCombinationReranker())
        kb = KnowledgeBase(Store(client or QdrantClient(":memory:"), local=True), kw.pop("embedder", HashingEmbedder()),
                           AccessPolicy(GRANTS), clock=clock, **kw)
        kb.open()
        return kb

    return factory


@pytest.fixture
def kb(make_kb) -> KnowledgeBase:
    return make_kb()


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(make_settings())) as c:
        yield c


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory):
    """One ONNX export of the packaged weights per test session, in a temporary cache dir."""
    return tmp_path_factory.mktemp("onnx-cache")
