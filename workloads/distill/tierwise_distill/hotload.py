"""Hot-load registry versions into running vLLM servers through the runtime LoRA API.

vLLM must run with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` and ``--enable-lora``. Each version is
served under its own name, ``<adapter>-v<version>`` (e.g. ``billing-v3``), so two versions can be
resident at once for a canary and the old one can finish its in-flight requests.

A rollout of ``<adapter>@<channel>`` has two phases:

``load``   materialise the version (sha256-checked) under ``lora_root``, refuse it if the server's
           residency budget (``max_resident``, derived from ``--max-cpu-loras``/``--max-loras``) is
           full, ``POST /v1/load_lora_adapter``, and emit router weights giving the new version
           ``canary`` share (1.0 = all traffic).
``finish`` emit weights with the new version at 1.0, then for every other version of the adapter:
           drain (no running/waiting requests for it in ``vllm:lora_requests_info``, or none at all
           on the server) and ``POST /v1/unload_lora_adapter``.

Rollback is ``Registry.rollback`` (the channel pointer moves back) followed by the same rollout; the
previous version is often still resident, so it takes effect at once.

What is emitted for the router (another service; it reads the file, e.g. from its ConfigMap)::

    {"schema": "tierwise.adapter-routes/v1", "model": "tiny", "generated_at": "...",
     "routes": {"billing": [{"served": "billing-v2", "version": 2, "weight": 0.9},
                            {"served": "billing-v3", "version": 3, "weight": 0.1}]}}

A request for adapter ``billing`` goes to served name ``billing-vN`` with probability ``weight``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tierwise_distill.registry import Registry, RegistryError

ROUTES_SCHEMA = "tierwise.adapter-routes/v1"


class HotloadError(Exception):
    pass


def served_name(name: str, version: int) -> str:
    return f"{name}-v{int(version)}"


def parse_served(served: str) -> tuple[str, int] | None:
    name, sep, v = served.rpartition("-v")
    return (name, int(v)) if sep and v.isdigit() and name else None


def parse_prom(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Minimal Prometheus text parser: (metric, labels, value) per sample."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            name, rest = line.split("{", 1)
            lab, _, val = rest.rpartition("}")
            labels: dict[str, str] = {}
            i = 0
            while i < len(lab):
                eq = lab.index("=", i)
                k = lab[i:eq].strip().lstrip(",").strip()
                j = eq + 2
                v = []
                while lab[j] != '"':
                    if lab[j] == "\\":
                        j += 1
                    v.append(lab[j])
                    j += 1
                labels[k] = "".join(v)
                i = j + 1
            value = val.strip().split()[0]
        else:
            name, value = line.split()[:2]
            labels = {}
        try:
            out.append((name.strip(), labels, float(value)))
        except ValueError:
            continue
    return out


@dataclass
class LoraActivity:
    max_lora: int | None
    running: set[str] = field(default_factory=set)
    waiting: set[str] = field(default_factory=set)
    requests_running: float = 0.0
    requests_waiting: float = 0.0


class VllmAdapterClient:
    def __init__(self, base_url: str, *, client: httpx.Client | None = None, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = client or httpx.Client(timeout=timeout_s)

    def _post(self, path: str, body: dict[str, Any]) -> str:
        r = self.http.post(self.base_url + path, json=body)
        if r.status_code != 200:
            try:
                msg = r.json().get("error", {}).get("message") or r.text
            except ValueError:
                msg = r.text
            raise HotloadError(f"{self.base_url}{path} -> {r.status_code}: {msg}")
        return r.text

    def loaded(self) -> list[str]:
        r = self.http.get(self.base_url + "/v1/models")
        r.raise_for_status()
        return sorted(m["id"] for m in r.json()["data"] if m.get("parent"))

    def load(self, served: str, path: str) -> None:
        self._post("/v1/load_lora_adapter", {"lora_name": served, "lora_path": path})

    def unload(self, served: str) -> None:
        self._post("/v1/unload_lora_adapter", {"lora_name": served})

    def activity(self) -> LoraActivity:
        r = self.http.get(self.base_url + "/metrics")
        r.raise_for_status()
        act = LoraActivity(max_lora=None)
        newest = -1.0
        for name, labels, value in parse_prom(r.text):
            if name == "vllm:lora_requests_info" and value >= newest:  # an info gauge set to the current time
                newest = value
                act.max_lora = int(labels.get("max_lora") or 0) or None
                act.running = {x for x in labels.get("running_lora_adapters", "").split(",") if x}
                act.waiting = {x for x in labels.get("waiting_lora_adapters", "").split(",") if x}
            elif name == "vllm:num_requests_running":
                act.requests_running += value
            elif name == "vllm:num_requests_waiting":
                act.requests_waiting += value
        return act

    def wait_drained(self, served: str, *, timeout_s: float = 120.0, poll_s: float = 0.5,
                     sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> int:
        """Block until no request uses ``served`` (returns the number of polls). The LoRA info gauge is
        only refreshed on engine steps, so an idle server (nothing running or waiting) also counts."""
        deadline = clock() + timeout_s
        polls = 0
        while True:
            polls += 1
            a = self.activity()
            if (a.requests_running + a.requests_waiting) == 0 or served not in (a.running | a.waiting):
                return polls
            if clock() >= deadline:
                raise HotloadError(f"{self.base_url}: {served} still has requests after {timeout_s}s; not unloading")
            sleep(poll_s)


def routes_document(model: str, routes: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {"schema": ROUTES_SCHEMA, "model": model,
            "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "routes": routes}


@dataclass
class Rollout:
    registry: Registry
    servers: list[VllmAdapterClient]
    lora_root: Path  # where versions are materialised; must be the same path on the vLLM hosts
    model: str = "tiny"
    max_resident: int = 4
    base_sha256: str | None = None  # the served base model's fingerprint; refuse adapters for another base
    drain_timeout_s: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    # On the cluster the serving stack mounts the adapters bucket prefix ``<model>/`` read-only at
    # /models/adapters on every vLLM pod, so a registry version is already on the server at
    # "/models/adapters/{name}/versions/{version}/files" (immutable, so mount caching is safe): set
    # this template and nothing is copied (the version is sha256-verified in the bucket instead).
    server_path_template: str | None = None

    def load(self, name: str, channel: str = "prod", canary: float = 1.0) -> dict[str, Any]:
        if not 0.0 < canary <= 1.0:
            raise HotloadError(f"canary share must be in (0, 1], got {canary}")
        _, version = self.registry.resolve(f"{name}@{channel}")
        m = self.registry.manifest(name, version)
        if self.base_sha256 and m["base_model"]["sha256"] != self.base_sha256:
            raise HotloadError(f"refused: {name} v{version} was trained on base {m['base_model']['sha256'][:12]}, "
                               f"the servers run {self.base_sha256[:12]}")
        if m["rank"] > self.registry.limits.max_rank or m["size_bytes"] > self.registry.limits.max_size_bytes:
            raise HotloadError(f"refused: {name} v{version} (rank {m['rank']}, {m['size_bytes']} bytes) is over "
                               "this environment's adapter limits")
        if self.server_path_template:
            self.registry.verify(name, version)
            path: Path | str = self.server_path_template.format(name=name, version=version)
        else:
            path = self.registry.materialize(name, version, self.lora_root)
        new = served_name(name, version)
        for s in self.servers:
            loaded = s.loaded()
            if new in loaded:
                continue
            if len(loaded) + 1 > self.max_resident:
                raise HotloadError(
                    f"refused: {s.base_url} already holds {len(loaded)} adapters ({', '.join(loaded)}) and the "
                    f"residency budget is {self.max_resident} (--max-cpu-loras); finish or roll back a rollout "
                    "to unload old versions first")
            s.load(new, str(path))
        return self._routes(name, version, canary)

    def _routes(self, name: str, version: int, share: float) -> dict[str, Any]:
        resident = sorted({v for s in self.servers for x in s.loaded()
                           if (p := parse_served(x)) and p[0] == name for v in [p[1]]})
        others = [v for v in resident if v != version]
        entries = [{"served": served_name(name, version), "version": version, "weight": round(share, 6)}]
        if others and share < 1.0:
            prev = max(others)  # the version the canary is compared with
            entries.insert(0, {"served": served_name(name, prev), "version": prev, "weight": round(1 - share, 6)})
        return routes_document(self.model, {name: entries})

    def finish(self, name: str, channel: str = "prod") -> dict[str, Any]:
        """All traffic to the channel's version, then drain and unload every other version. Call
        after the router has applied the weights from ``load`` (or immediately, without a canary)."""
        _, version = self.registry.resolve(f"{name}@{channel}")
        doc = routes_document(self.model, {name: [{"served": served_name(name, version), "version": version,
                                                   "weight": 1.0}]})
        keep = served_name(name, version)
        unloaded: list[str] = []
        for s in self.servers:
            if keep not in s.loaded():
                raise HotloadError(f"{s.base_url} does not hold {keep}; run the load phase first")
            for x in s.loaded():
                p = parse_served(x)
                if p and p[0] == name and x != keep:
                    s.wait_drained(x, timeout_s=self.drain_timeout_s, sleep=self.sleep)
                    s.unload(x)
                    unloaded.append(f"{s.base_url}:{x}")
        return doc | {"unloaded": unloaded}


def write_routes(doc: dict[str, Any], path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    tmp.replace(p)
    return p


__all__ = ["HotloadError", "LoraActivity", "RegistryError", "Rollout", "VllmAdapterClient", "parse_prom",
           "served_name", "write_routes"]
