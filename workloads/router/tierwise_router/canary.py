"""Adapter canaries: which served version of a LoRA adapter answers a request.

The adapter pipeline (workloads/distill, ``tierwise adapters rollout --routes-out FILE``) serves version
*n* of adapter ``x`` as ``x-vn`` and writes the split as a ``tierwise.adapter-routes/v1`` document::

    {"schema": "tierwise.adapter-routes/v1", "model": "tiny", "generated_at": "…",
     "routes": {"billing": [{"served": "billing-v2", "version": 2, "weight": 0.9},
                            {"served": "billing-v3", "version": 3, "weight": 0.1}]}}

The router shares that data format, not the pipeline's code: it reads the routes inline from its config
(``routing.adapter_routes``) and/or from the file (``routing.adapter_routes_file``, re-read when its
mtime or size changes, every ``adapter_routes_reload_s``; the file's adapters override the inline ones).
A bad file is logged and the last good routes stay in force.

The choice is per request and deterministic in the request id: ``u = crc32(adapter, request id) / 2^32``
walks the cumulative weights, so a client retry that resends its ``x-request-id`` lands on the same
version, and over many ids the shares converge to the weights.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from .config import AdapterSplit, check_splits
from .observability import event

SCHEMA = "tierwise.adapter-routes/v1"
_ROUTES = TypeAdapter(dict[str, list[AdapterSplit]])


class RoutesError(ValueError):
    pass


def parse_document(doc: Any, model: str, adapters: list[str]) -> dict[str, list[AdapterSplit]]:
    """Validate a ``tierwise.adapter-routes/v1`` document for Tier-1 model ``model``."""
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        got = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise RoutesError(f"adapter routes: schema must be {SCHEMA!r}, got {got!r}")
    if doc.get("model") != model:
        raise RoutesError(f"adapter routes are for model {doc.get('model')!r}, this router's Tier 1 is {model!r}")
    try:
        routes = _ROUTES.validate_python(doc.get("routes"))
        check_splits(routes, "routes")
    except (ValidationError, ValueError) as e:
        raise RoutesError(f"adapter routes: {e}") from e
    unknown = sorted(set(routes) - set(adapters))
    if unknown:
        raise RoutesError(f"adapter routes name adapters {unknown} that are not adapters of {model} ({adapters})")
    return routes


def pick(splits: list[AdapterSplit], adapter: str, request_id: str) -> str:
    """The served name for this request: deterministic in (adapter, request id)."""
    if len(splits) == 1:
        return splits[0].served
    u = zlib.crc32(request_id.encode(), zlib.crc32(adapter.encode())) / 4294967296.0
    acc = 0.0
    for s in splits:
        acc += s.weight
        if u < acc:
            return s.served
    return splits[-1].served  # float rounding at the top end


class AdapterRoutes:
    """The routes in force (inline config merged with the file)."""

    def __init__(self, inline: dict[str, list[AdapterSplit]], model: str, adapters: list[str],
                 path: Path | None = None, log: logging.Logger | None = None) -> None:
        self.inline, self.model, self.adapters, self.path, self.log = dict(inline), model, list(adapters), path, log
        self.routes: dict[str, list[AdapterSplit]] = dict(inline)
        self._seen: tuple[int, int] | None = None
        self.loaded_from_file = False

    def served(self, adapter: str | None, request_id: str) -> str | None:
        if adapter is None:
            return None
        splits = self.routes.get(adapter)
        return adapter if splits is None else pick(splits, adapter, request_id)

    def reload(self) -> bool:
        """Re-read the file if it changed. True when the routes changed. Errors keep the last good routes."""
        if self.path is None:
            return False
        try:
            st = os.stat(self.path)  # follows the ConfigMap volume's ..data symlink swap
        except FileNotFoundError:
            if self._seen is not None and self.log is not None:
                event(self.log, "adapter_routes_missing", logging.WARNING, path=str(self.path))
            self._seen = None
            return False
        sig = (st.st_mtime_ns, st.st_size)
        if sig == self._seen:
            return False
        self._seen = sig
        try:
            routes = parse_document(json.loads(Path(self.path).read_text()), self.model, self.adapters)
        except (OSError, json.JSONDecodeError, RoutesError) as e:
            if self.log is not None:
                event(self.log, "adapter_routes_invalid", logging.ERROR, path=str(self.path), error=str(e)[:300])
            return False
        new = {**self.inline, **routes}
        changed = new != self.routes
        self.routes, self.loaded_from_file = new, True
        if changed and self.log is not None:
            event(self.log, "adapter_routes_loaded", path=str(self.path),
                  routes={a: [[s.served, s.weight] for s in ss] for a, ss in new.items()})
        return changed
