"""Tier-1 replica choice: prefix affinity combined with load — never prefix alone.

The affinity key hashes the leading prompt blocks, salted by the adapter (a KV-cache prefix is only
reusable on the same adapter). Rendezvous hashing ranks replicas by affinity; the pick is the
replica with the lowest ``load + affinity bonus``, where load = in-flight requests we sent plus the
scraped ``vllm:num_requests_waiting``. So the preferred replica wins while it is not much busier
than the others, and a hot prefix cannot pile onto one saturated replica. Replicas whose breaker is
open (or half-open with its trial call in flight) or whose waiting queue is above the saturation threshold are skipped.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from .breaker import Breaker
from .upstreams.h1 import H1Pool


@dataclass
class Replica:
    url: str
    breaker: Breaker
    inflight: int = 0
    waiting: int = 0  # scraped vllm:num_requests_waiting
    running: int = 0
    scrape_ok: bool = True
    salt: int = field(default=0)
    pool: H1Pool | None = field(default=None, repr=False)  # non-streaming keep-alive pool (app lifespan)
    headers: dict[str, str] = field(default_factory=dict)  # sent on every call (the gateway's model header)
    scrape: bool = True  # False for the inference Gateway: it has no vLLM /metrics; its picker sheds load with 429

    def __post_init__(self) -> None:
        self.salt = zlib.crc32(self.url.encode())

    @property
    def load(self) -> int:
        return self.inflight + self.waiting


def affinity_key(text: str, adapter: str | None, block_chars: int, blocks: int) -> int:
    head = text[: block_chars * blocks]
    return zlib.crc32(((adapter or "") + "\x00" + head).encode())


def _rank(key: int, r: Replica) -> int:
    return zlib.crc32(key.to_bytes(4, "little"), r.salt)


def choose(replicas: list[Replica], key: int, saturation_waiting: int, affinity_bonus: int = 2) -> Replica | None:
    """Best replica, or None if every replica is open-circuit or saturated."""
    usable = [r for r in replicas if r.waiting <= saturation_waiting and r.breaker.available]
    if not usable:
        return None
    preferred = max(usable, key=lambda r: _rank(key, r))
    best = min(usable, key=lambda r: (r.load - (affinity_bonus if r is preferred else 0), -_rank(key, r)))
    return best
