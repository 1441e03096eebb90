"""Tier-1 client for OpenAI-compatible vLLM endpoints.

Non-streaming calls go through ``h1.H1Pool`` (a pooled raw HTTP/1.1 client; see h1.py for the
profile that justified it). Streaming, /metrics scraping and probes use a pooled aiohttp session:
measured on these 2 cores (shared/NOTES.md), httpx.AsyncClient in a pass-through added ~1.2 ms p50 /
~3.0 ms p99 at 500 req/s and saturated at 1,000 req/s, so httpx is not used anywhere on the path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from . import UpstreamError, h1


def new_session(limit: int = 512, connect_timeout_s: float = 1.0) -> aiohttp.ClientSession:
    conn = aiohttp.TCPConnector(limit=limit, limit_per_host=0, ttl_dns_cache=300, enable_cleanup_closed=True)
    return aiohttp.ClientSession(connector=conn, json_serialize=lambda o: orjson.dumps(o).decode(),
                                 timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s),
                                 skip_auto_headers=("User-Agent",), auto_decompress=False)


_JSON = {"content-type": "application/json"}


async def complete(pool: h1.H1Pool, body: bytes, timeout_s: float) -> bytes:
    """Non-streaming call over the pooled raw HTTP/1.1 client (see h1.py for why not aiohttp here)."""
    try:
        status, data = await pool.post("/v1/chat/completions", body, timeout_s)
    except TimeoutError as e:
        raise UpstreamError("timeout", "upstream timed out") from e
    except h1.ConnectError as e:
        raise UpstreamError("connect", f"upstream unreachable: {e}") from e
    except h1.ProtocolError as e:
        raise UpstreamError("connect", f"upstream connection failed: {e}") from e
    if status != 200:
        raise UpstreamError("status", f"upstream answered {status}", status, data)
    return data


@dataclass
class SseEvent:
    raw: bytes  # the whole event including the trailing blank line
    data: bytes


class VllmStream:
    """An opened stream: status checked and the first event read (so fallback is still possible)."""

    def __init__(self, resp: aiohttp.ClientResponse, first: list[SseEvent], buf: bytes) -> None:
        self._resp = resp
        self.first = first
        self._buf = buf

    async def events(self) -> AsyncIterator[SseEvent]:
        for ev in self.first:
            yield ev
        buf = self._buf
        while True:
            while True:
                i = buf.find(b"\n\n")
                if i < 0:
                    break
                raw, buf = buf[: i + 2], buf[i + 2 :]
                yield SseEvent(raw, _data(raw))
            chunk = await self._resp.content.readany()
            if not chunk:
                break
            buf += chunk
        if buf.strip():
            raise UpstreamError("protocol", "stream ended mid-event")

    def close(self) -> None:
        self._resp.release()


def _data(raw: bytes) -> bytes:
    out = [line[5:].lstrip() for line in raw.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(out)


async def open_stream(session: aiohttp.ClientSession, base_url: str, body: bytes, timeout_s: float,
                      headers: dict[str, str] | None = None) -> VllmStream:
    try:
        resp = await session.post(base_url + "/v1/chat/completions", data=body,
                                  headers={**_JSON, **headers} if headers else _JSON,
                                  timeout=aiohttp.ClientTimeout(total=timeout_s, sock_read=timeout_s))
    except TimeoutError as e:
        raise UpstreamError("timeout", "upstream timed out") from e
    except aiohttp.ClientConnectionError as e:
        raise UpstreamError("connect", f"upstream unreachable: {e.__class__.__name__}") from e
    try:
        if resp.status != 200:
            data = await resp.read()
            raise UpstreamError("status", f"upstream answered {resp.status}", resp.status, data)
        buf = b""
        async for chunk in resp.content.iter_any():
            buf += chunk
            i = buf.find(b"\n\n")
            if i >= 0:
                raw, buf = buf[: i + 2], buf[i + 2 :]
                return VllmStream(resp, [SseEvent(raw, _data(raw))], buf)
        raise UpstreamError("protocol", "stream closed before the first event")
    except TimeoutError as e:
        resp.release()
        raise UpstreamError("timeout", "upstream timed out before the first event") from e
    except aiohttp.ClientError as e:
        resp.release()
        raise UpstreamError("connect", f"upstream failed before the first event: {e.__class__.__name__}") from e
    except UpstreamError:
        resp.release()
        raise


def _sum_series(text: str, name: str) -> float:
    """Sum of one Prometheus series over its label sets (``name{...} value [timestamp]`` lines)."""
    total, pos, n = 0.0, 0, len(name)
    while (i := text.find(name, pos)) >= 0:
        end = text.find("\n", i)
        end = len(text) if end < 0 else end
        nxt = text[i + n:i + n + 1]
        if (i == 0 or text[i - 1] == "\n") and nxt in ("{", " "):
            rest = text[text.index("}", i) + 1:end] if nxt == "{" else text[i + n:end]
            total += float(rest.split()[0])
        pos = end
    return total


def parse_waiting(metrics_text: str) -> tuple[int, int]:
    """Sum of vllm:num_requests_waiting and vllm:num_requests_running over all label sets.

    Finds the two series with ``str.find`` instead of splitting every line: a real vLLM /metrics page
    is ~2,600 lines / 160 KB (histograms per model and adapter), and the line loop took ~1.6 ms of
    event-loop time per replica per scrape (~0.5 ms this way)."""
    return (int(_sum_series(metrics_text, "vllm:num_requests_waiting")),
            int(_sum_series(metrics_text, "vllm:num_requests_running")))


async def scrape(session: aiohttp.ClientSession, base_url: str, timeout_s: float = 1.0) -> tuple[int, int]:
    async with session.get(base_url + "/metrics", timeout=aiohttp.ClientTimeout(total=timeout_s)) as r:
        if r.status != 200:
            raise UpstreamError("status", f"/metrics answered {r.status}", r.status)
        return parse_waiting(await r.text())


def usage_of(obj: dict[str, Any]) -> tuple[int, int] | None:
    u = obj.get("usage")
    if not u:
        return None
    return int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0)
