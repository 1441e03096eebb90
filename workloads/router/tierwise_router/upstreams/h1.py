"""A minimal pooled HTTP/1.1 client for the non-streaming Tier-1 hot path (POST JSON, read the whole body).

Why not aiohttp here: profiled with py-spy on the router under a 500 req/s loopback load
(bench/router_overhead.py, 2 cores), aiohttp's ``ClientSession.post`` was ~26 % of the router's samples
(ClientRequest/payload registry/CIMultiDict/timeout handles per call), more than our whole routing
logic. This client writes one pre-framed request per call on a keep-alive connection and parses the
answer with ``httptools`` (the same C parser uvicorn uses), so a call is a ``transport.write`` and a
future. aiohttp stays for streaming, scraping, hooks and probes, where its features matter and the
rate is low.

Semantics the router relies on:
- keep-alive connections, LIFO reuse, at most ``limit`` open (callers beyond that wait in FIFO order);
  idle connections older than ``idle_s`` (below uvicorn's 5 s keep-alive) are dropped, not reused;
- a *reused* connection that the server closed before sending any byte of the answer is retried once
  on a fresh connection (the server closed an idle keep-alive socket under us; the request never
  reached the application), never a fresh one — a POST is not blindly replayed;
- ``ConnectError`` / ``TimeoutError`` / ``ProtocolError`` are distinct, so the caller can map them to
  fallback reasons; a connection that timed out or broke is closed, never returned to the pool.
"""

from __future__ import annotations

import asyncio
import collections
import time
from urllib.parse import urlsplit

import httptools


class ConnectError(Exception):
    pass


class ProtocolError(Exception):
    pass


class _StaleConnection(Exception):
    """The server closed a reused keep-alive connection before answering (safe to retry once)."""


class _Conn(asyncio.Protocol):
    __slots__ = ("transport", "parser", "fut", "status", "chunks", "closed", "got_bytes", "keep_alive",
                 "idle_since", "_pool")

    def __init__(self, pool: H1Pool) -> None:
        self._pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.fut: asyncio.Future[tuple[int, bytes]] | None = None
        self.status = 0
        self.chunks: list[bytes] = []
        self.closed = False
        self.got_bytes = False
        self.keep_alive = True
        self.idle_since = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # pragma: no cover - we never ask for an upgrade
            self._fail(ProtocolError("unexpected upgrade"))
        except httptools.HttpParserError as e:
            self._fail(ProtocolError(f"bad HTTP response: {e}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.fut is not None and not self.fut.done():
            if not self.got_bytes:
                self.fut.set_exception(_StaleConnection())
            else:
                # A response without Content-Length ends at EOF: let the parser finish it.
                try:
                    self.parser.feed_data(b"")
                except httptools.HttpParserError:
                    pass
                if not self.fut.done():
                    self.fut.set_exception(ProtocolError("connection closed mid-response"))

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        fut = self.fut
        if fut is not None and not fut.done():
            fut.set_result((self.status, b"".join(self.chunks)))

    def _fail(self, exc: Exception) -> None:
        if self.fut is not None and not self.fut.done():
            self.fut.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class H1Pool:
    """Keep-alive connection pool to one ``http://host:port`` origin."""

    def __init__(self, base_url: str, *, limit: int = 512, connect_timeout_s: float = 1.0,
                 idle_s: float = 4.0, extra_headers: dict[str, str] | None = None) -> None:
        u = urlsplit(base_url)
        if u.scheme != "http" or not u.hostname:
            raise ValueError(f"H1Pool speaks plain http only, got {base_url!r}")
        self.host = u.hostname
        self.port = u.port or 80
        self.prefix = u.path.rstrip("/")
        self._hosthdr = f"{self.host}:{self.port}".encode()
        if any("\r" in k + v or "\n" in k + v or ":" in k for k, v in (extra_headers or {}).items()):
            raise ValueError(f"H1Pool: bad extra header in {extra_headers!r}")
        self._extra = "".join(f"{k}: {v}\r\n" for k, v in (extra_headers or {}).items()).encode()  # pre-framed, per pool
        self.limit = limit
        self.connect_timeout_s = connect_timeout_s
        self.idle_s = idle_s
        self._idle: list[_Conn] = []
        self._open = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.connects = 0  # observable in tests: how many TCP connections were made

    def _head(self, path: str, length: int) -> bytes:
        return (b"POST " + (self.prefix + path).encode() + b" HTTP/1.1\r\nHost: " + self._hosthdr +
                b"\r\nContent-Type: application/json\r\nAccept: application/json\r\n" + self._extra + b"Content-Length: " +
                str(length).encode() + b"\r\n\r\n")

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _, proto = await loop.create_connection(lambda: _Conn(self), self.host, self.port)
        except TimeoutError as e:
            raise ConnectError(f"connect to {self.host}:{self.port} timed out") from e
        except OSError as e:
            raise ConnectError(f"connect to {self.host}:{self.port} failed: {e.__class__.__name__}") from e
        self.connects += 1
        return proto

    async def _acquire(self, fresh: bool = False) -> tuple[_Conn, bool]:
        """An idle keep-alive connection (reused=True) or a new one; waits while ``limit`` are open."""
        while True:
            now = time.monotonic()
            if not fresh:
                while self._idle:
                    c = self._idle.pop()
                    if not c.closed and now - c.idle_since < self.idle_s:
                        return c, True
                    c.close()  # idle too long or closed by the server
                    self._open -= 1
            elif self._open >= self.limit and self._idle:
                self._idle.pop(0).close()  # make room for the fresh connection
                self._open -= 1
            if self._open < self.limit:
                break
            w = asyncio.get_running_loop().create_future()
            self._waiters.append(w)
            try:
                await w
            except BaseException:
                if w in self._waiters:
                    self._waiters.remove(w)
                raise
        self._open += 1
        try:
            return await self._connect(), False
        except BaseException:
            self._open -= 1
            self._wake()
            raise

    def _wake(self) -> None:
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(None)
                return

    def _release(self, c: _Conn, reusable: bool) -> None:
        if reusable and not c.closed:
            c.fut = None
            c.idle_since = time.monotonic()
            self._idle.append(c)
        else:
            c.close()
            self._open -= 1
        self._wake()

    async def post(self, path: str, body: bytes, timeout_s: float) -> tuple[int, bytes]:
        """POST ``body`` (JSON) and return ``(status, body)`` of the answer."""
        deadline = time.monotonic() + timeout_s
        for attempt in (0, 1):
            c, reused = await self._acquire(fresh=attempt == 1)
            c.fut = fut = asyncio.get_running_loop().create_future()
            c.status, c.chunks, c.got_bytes = 0, [], False
            c.transport.writelines((self._head(path, len(body)), body))  # type: ignore[union-attr]
            left = deadline - time.monotonic()
            try:
                async with asyncio.timeout(left if left > 0 else 0):
                    status, data = await fut
            except _StaleConnection:
                self._release(c, False)
                if reused and attempt == 0:
                    continue
                raise ProtocolError("server closed the connection before answering") from None
            except BaseException:  # timeout, protocol error, cancellation: the connection is unusable
                self._release(c, False)
                raise
            self._release(c, c.keep_alive)
            return status, data
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        for c in self._idle:
            c.close()
        self._open -= len(self._idle)
        self._idle.clear()
