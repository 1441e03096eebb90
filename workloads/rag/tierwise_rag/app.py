"""App factory. Run: ``uvicorn --factory tierwise_rag.app:create_app``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from .access import AccessDenied, AccessPolicy
from .chunking import ChunkingConfig
from .deps import Unauthorized
from .embedding import Embedder, HashingEmbedder, MiniLMEmbedder, OnnxMiniLMEmbedder
from .engine import Conflict, InvalidRequest, KnowledgeBase, NotFound
from .observability import configure_logging, create_metrics
from .lexical import LexicalConfig
from .rerank import ConvexCombinationReranker, CrossEncoderReranker
from .settings import Settings
from .store import Store

log = logging.getLogger("tierwise.rag.api")


def build_qdrant(settings: Settings) -> tuple[Any, bool]:
    from qdrant_client import QdrantClient

    if settings.qdrant_url:
        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return QdrantClient(url=settings.qdrant_url, api_key=key, timeout=int(settings.qdrant_timeout_seconds)), False
    if settings.qdrant_path:
        settings.qdrant_path.mkdir(parents=True, exist_ok=True)
        return QdrantClient(path=str(settings.qdrant_path)), True
    return QdrantClient(":memory:"), True


def build_embedder(settings: Settings) -> Embedder:
    if settings.embedder == "hashing":
        return HashingEmbedder()
    if settings.embed_backend == "torch":
        return MiniLMEmbedder(threads=settings.embed_threads)
    return OnnxMiniLMEmbedder(threads=settings.embed_threads, batch_threads=settings.embed_batch_threads, cache_dir=settings.onnx_cache_dir,
                              quantized=settings.embed_quantized)


def build_kb(settings: Settings, embedder: Embedder | None = None) -> KnowledgeBase:
    client, local = build_qdrant(settings)
    kb = KnowledgeBase(
        Store(client, prefix=settings.qdrant_prefix, local=local),
        embedder or build_embedder(settings),
        AccessPolicy({name: team for name, team in settings.teams.items()}),
        chunking=ChunkingConfig(settings.chunk_max_tokens, settings.chunk_overlap_tokens),
        max_document_bytes=settings.max_document_bytes,
        max_chunks_per_document=settings.max_chunks_per_document,
        reranker=(CrossEncoderReranker(settings.rerank_model_dir, threads=settings.embed_threads) if settings.rerank_model_dir
                  else ConvexCombinationReranker(settings.rerank_alpha)),
        rerank_depth=settings.rerank_depth,
        staging_ttl_seconds=settings.staging_ttl_seconds,
        lexical=LexicalConfig(stopwords=settings.bm25_stopwords, stem=settings.bm25_stem, k1=settings.bm25_k1, b=settings.bm25_b),
    )
    kb.open()
    return kb


def _error(status: int, message: str, type_: str, param: str | None = None, code: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type_, "param": param, "code": code}}, status_code=status)


def create_app(settings: Settings | None = None, *, embedder: Embedder | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.service_name)
    metrics = create_metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        kb = await asyncio.to_thread(build_kb, settings, embedder)
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        if settings.watch_dir:
            from .events import FolderSync

            sync = FolderSync(kb, settings.watch_dir, settings.watch_collection or "", settings.watch_team or "")
            app.state.folder_sync = sync
            tasks.append(asyncio.create_task(sync.watch(stop), name="folder-watch"))
        tasks.append(asyncio.create_task(_staging_sweeper(kb, settings.staging_sweep_seconds, stop), name="staging-sweeper"))
        if settings.sqs_queue_url:
            tasks.append(asyncio.create_task(_sqs_loop(settings, kb, stop), name="sqs-consumer"))
        try:
            yield {"kb": kb}
        finally:
            stop.set()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                kb.store.client.close()

    app = FastAPI(title="tierwise RAG", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = metrics

    @app.middleware("http")
    async def observe(request: Request, call_next: Any) -> Any:
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        t = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            response.headers["x-request-id"] = rid
            return response
        finally:
            route = request.scope.get("route")
            path = getattr(route, "path", "unmatched")
            dt = time.perf_counter() - t
            metrics.requests.labels(path, str(status)).inc()
            metrics.latency.labels(path).observe(dt)
            if path not in ("/healthz", "/metrics", "/readyz"):
                log.info("request", extra={"request_id": rid, "route": path, "status": status,
                                           "latency_ms": round(dt * 1000, 2), "team": getattr(request.state, "team", None)})

    @app.exception_handler(Unauthorized)
    async def _unauth(_: Request, exc: Unauthorized) -> JSONResponse:
        return _error(401, str(exc), "authentication_error", code="invalid_api_key")

    @app.exception_handler(AccessDenied)
    async def _denied(_: Request, exc: AccessDenied) -> JSONResponse:
        return _error(403, str(exc), "permission_error", param="collection", code="collection_not_granted")

    @app.exception_handler(NotFound)
    async def _nf(_: Request, exc: NotFound) -> JSONResponse:
        return _error(404, str(exc), "not_found_error", code="not_found")

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> JSONResponse:
        return _error(409, str(exc), "conflict_error", code="conflict")

    @app.exception_handler(InvalidRequest)
    async def _invalid(_: Request, exc: InvalidRequest) -> JSONResponse:
        return _error(400, str(exc), "invalid_request_error", param=exc.param)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(400, f"{loc}: {first.get('msg', 'invalid request')}" if loc else str(first.get("msg")), "invalid_request_error", param=loc or None)

    from .routers import collections, events, health, ingest, retrieve

    for r in (health.router, ingest.router, retrieve.router, collections.router, events.router):
        app.include_router(r)
    return app


async def _staging_sweeper(kb: KnowledgeBase, every_s: float, stop: asyncio.Event) -> None:
    """Drop abandoned staging versions (each staging call sweeps too; this covers a quiet service)."""
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_s)
        try:
            dropped = await asyncio.to_thread(kb.expire_staging)
            if dropped:
                log.info("staging_expired", extra={"dropped": dropped})
        except Exception:
            log.exception("staging_sweep_failed")


async def _sqs_loop(settings: Settings, kb: KnowledgeBase, stop: asyncio.Event) -> None:  # pragma: no cover - needs AWS
    import boto3

    from .events import S3EventApplier, SqsConsumer

    consumer = SqsConsumer(
        boto3.client("sqs", region_name=settings.sqs_region), boto3.client("s3", region_name=settings.sqs_region),
        settings.sqs_queue_url or "", lambda fetch: S3EventApplier(kb, settings.s3_sources, fetch),
    )
    while not stop.is_set():
        try:
            await asyncio.to_thread(consumer.poll_once)
        except Exception:
            log.exception("sqs_poll_failed")
            await asyncio.sleep(5)
