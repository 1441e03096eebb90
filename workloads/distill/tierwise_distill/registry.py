"""Adapter registry: immutable, content-checked versions and movable channel pointers.

Layout (identical on a directory and on S3)::

    <name>/versions/<n>/.reserved          put_new — allocates version n (two publishers never share it)
    <name>/versions/<n>/files/<relpath>    adapter files (adapter_config.json, adapter_model.safetensors, gate_report.json ...)
    <name>/versions/<n>/manifest.json      put_new, written LAST: the commit point; a version exists iff this exists
    <name>/channels/<channel>.json         {"version", "history", ...}, moved by compare-and-swap

A version is never rewritten: ``manifest.json`` is created with put_new and lists the sha256 of
every file, which ``verify``/``materialize`` check. ``promote`` pushes the channel's current
version onto its history; ``rollback`` pops it. Both are one conditional write, so concurrent
movers cannot lose an update (the loser gets ``ConflictError`` and retries from a fresh read).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tierwise_distill.store import AlreadyExists, ConflictError, Store, iter_files

MANIFEST_SCHEMA = "tierwise.adapter-manifest/v1"
CHANNEL_SCHEMA = "tierwise.adapter-channel/v1"
NAME_OK = set("abcdefghijklmnopqrstuvwxyz0123456789-")


class RegistryError(Exception):
    """A refusal with a message meant for the operator."""


@dataclass(frozen=True)
class Limits:
    """What this environment's vLLM servers accept (``--max-lora-rank``) and how large one adapter
    may be (adapter memory pressure: every resident adapter takes GPU/CPU memory)."""

    max_rank: int = 64
    max_size_bytes: int = 256 * 1024 * 1024


def sha256_file(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_fingerprint(model_dir: str | Path) -> str:
    """sha256 over (relative path, sha256) of a model folder's config and weight files — the
    identity an adapter is bound to (an adapter on a different base is garbage)."""
    d = Path(model_dir)
    h = hashlib.sha256()
    for p in iter_files(d):
        if p.suffix in (".json", ".safetensors", ".bin", ".model", ".txt") and p.name != "vllm.log":
            h.update(f"{p.relative_to(d).as_posix()}\0{sha256_file(p)}\n".encode())
    return h.hexdigest()


def adapter_rank(adapter_dir: Path) -> tuple[int, dict[str, Any]]:
    cfg_path = adapter_dir / "adapter_config.json"
    if not cfg_path.exists():
        raise RegistryError(f"{adapter_dir} is not a peft adapter: adapter_config.json missing")
    cfg = json.loads(cfg_path.read_text())
    ranks = [int(cfg.get("r", 0))] + [int(v) for v in (cfg.get("rank_pattern") or {}).values()]
    return max(ranks), cfg


def check_limits(adapter_dir: Path, limits: Limits, name: str = "adapter") -> dict[str, Any]:
    """Refuse an adapter over the environment's rank or size limits, with a message that says what
    to change. Returns {rank, size_bytes, config}."""
    rank, cfg = adapter_rank(adapter_dir)
    size = sum(p.stat().st_size for p in iter_files(adapter_dir))
    if rank > limits.max_rank:
        raise RegistryError(
            f"refused {name}: LoRA rank {rank} exceeds this environment's limit {limits.max_rank} "
            f"(vLLM --max-lora-rank; TIERWISE_DISTILL_MAX_RANK). Retrain with r <= {limits.max_rank}.")
    if size > limits.max_size_bytes:
        raise RegistryError(
            f"refused {name}: adapter is {human_bytes(size)}, over this environment's limit "
            f"{human_bytes(limits.max_size_bytes)} (TIERWISE_DISTILL_MAX_ADAPTER_MB). "
            "Lower the rank or target fewer modules.")
    return {"rank": rank, "size_bytes": size, "config": cfg}


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _check_name(name: str) -> str:
    if not name or len(name) > 63 or not set(name) <= NAME_OK or name[0] == "-":
        raise RegistryError(f"invalid adapter name {name!r}: use 1-63 of [a-z0-9-], not starting with '-'")
    return name


class Registry:
    def __init__(self, store: Store, limits: Limits | None = None) -> None:
        self.store = store
        self.limits = limits or Limits()

    # ---- reading ---------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted({k.split("/", 1)[0] for k in self.store.list("") if k.endswith("/manifest.json")})

    def versions(self, name: str) -> list[int]:
        out = []
        for k in self.store.list(f"{_check_name(name)}/versions"):
            parts = k.split("/")
            if len(parts) == 4 and parts[3] == "manifest.json":
                out.append(int(parts[2]))
        return sorted(out)

    def manifest(self, name: str, version: int) -> dict[str, Any]:
        got = self.store.get(f"{_check_name(name)}/versions/{int(version)}/manifest.json")
        if got is None:
            raise RegistryError(f"adapter {name} has no version {version} (known: {self.versions(name)})")
        return json.loads(got[0])

    def channel(self, name: str, channel: str) -> dict[str, Any] | None:
        got = self.store.get(f"{_check_name(name)}/channels/{channel}.json")
        return json.loads(got[0]) if got else None

    def channels(self, name: str) -> dict[str, dict[str, Any]]:
        out = {}
        for k in self.store.list(f"{_check_name(name)}/channels"):
            ch = k.rsplit("/", 1)[1].removesuffix(".json")
            c = self.channel(name, ch)
            if c is not None:
                out[ch] = c
        return out

    def resolve(self, ref: str) -> tuple[str, int]:
        """``name@3``, ``name@v3`` or ``name@prod`` (a channel) → (name, version)."""
        name, _, rest = ref.partition("@")
        rest = rest or "prod"
        if rest.lstrip("v").isdigit():
            v = int(rest.lstrip("v"))
            self.manifest(name, v)
            return name, v
        c = self.channel(name, rest)
        if c is None:
            raise RegistryError(f"adapter {name} has no channel {rest!r}")
        return name, int(c["version"])

    # ---- publishing ------------------------------------------------------------------------------
    def publish(self, name: str, adapter_dir: str | Path, *, base_model: dict[str, str], dataset: dict[str, Any],
                metrics: dict[str, Any] | None = None, gate_report: dict[str, Any] | None = None,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Store an adapter as the next immutable version. ``base_model`` = {"name", "sha256"};
        ``dataset`` carries at least {"id"} (the content hash of the training data)."""
        _check_name(name)
        d = Path(adapter_dir)
        info = check_limits(d, self.limits, name)
        if not base_model.get("sha256"):
            raise RegistryError("refused: base_model.sha256 is required (the model the adapter was trained on)")
        if not dataset.get("id"):
            raise RegistryError("refused: dataset.id (content hash of the training data) is required")
        version = self._reserve(name)
        prefix = f"{name}/versions/{version}"
        files: dict[str, dict[str, Any]] = {}
        for p in iter_files(d):
            rel = p.relative_to(d).as_posix()
            data = p.read_bytes()
            self.store.put(f"{prefix}/files/{rel}", data)
            files[rel] = {"sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}
        if gate_report is not None:
            data = json.dumps(gate_report, indent=2, sort_keys=True).encode()
            self.store.put(f"{prefix}/files/gate_report.json", data)
            files["gate_report.json"] = {"sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}
        cfg = info["config"]
        manifest = {
            "schema": MANIFEST_SCHEMA, "name": name, "version": version, "created_at": _now(),
            "base_model": base_model, "rank": info["rank"], "lora_alpha": cfg.get("lora_alpha"),
            "target_modules": sorted(cfg.get("target_modules") or []), "size_bytes": info["size_bytes"],
            "dataset": dataset, "metrics": metrics or {},
            "gate": ({"passed": bool(gate_report.get("passed")), "report": "gate_report.json"}
                     if gate_report is not None else None),
            "files": files, **(extra or {}),
        }
        try:
            self.store.put_new(f"{prefix}/manifest.json", json.dumps(manifest, indent=2, sort_keys=True).encode())
        except AlreadyExists:  # cannot happen after a successful reservation, unless the store was edited by hand
            raise RegistryError(f"{name} version {version} already exists; versions are immutable") from None
        return manifest

    def _reserve(self, name: str) -> int:
        taken = {int(k.split("/")[2]) for k in self.store.list(f"{name}/versions") if k.count("/") >= 3}
        v = max(taken, default=0) + 1
        while True:
            try:
                self.store.put_new(f"{name}/versions/{v}/.reserved", _now().encode())
                return v
            except AlreadyExists:
                v += 1

    # ---- integrity -------------------------------------------------------------------------------
    def verify(self, name: str, version: int) -> dict[str, Any]:
        m = self.manifest(name, version)
        for rel, meta in m["files"].items():
            got = self.store.get(f"{name}/versions/{version}/files/{rel}")
            if got is None:
                raise RegistryError(f"{name} v{version}: file {rel} is missing")
            if hashlib.sha256(got[0]).hexdigest() != meta["sha256"]:
                raise RegistryError(f"{name} v{version}: file {rel} does not match its manifest sha256")
        return m

    def materialize(self, name: str, version: int, dest_root: str | Path) -> Path:
        """Copy a version's files to ``dest_root/<name>/<version>`` (checked against the manifest);
        the path vLLM loads from. Idempotent: an already verified copy is reused."""
        m = self.manifest(name, version)
        dest = Path(dest_root) / name / str(version)
        ok = dest / ".verified"
        if ok.exists() and ok.read_text() == m["files"].__repr__():
            return dest
        for rel, meta in m["files"].items():
            p = dest / rel
            self.store.download(f"{name}/versions/{version}/files/{rel}", p)
            if sha256_file(p) != meta["sha256"]:
                p.unlink()
                raise RegistryError(f"{name} v{version}: downloaded {rel} does not match its manifest sha256")
        ok.write_text(m["files"].__repr__())
        return dest

    # ---- channels --------------------------------------------------------------------------------
    def promote(self, name: str, version: int, channel: str = "prod", *, actor: str = "", reason: str = "",
                force: bool = False) -> dict[str, Any]:
        m = self.manifest(name, version)
        if not force:
            gate = m.get("gate")
            if gate is None:
                raise RegistryError(f"refused: {name} v{version} has no gate report; run the evaluation gate "
                                    "(or pass --force with a reason)")
            if not gate.get("passed"):
                rep = self.store.get(f"{name}/versions/{version}/files/gate_report.json")
                why = "; ".join(json.loads(rep[0]).get("reasons", [])) if rep else ""
                raise RegistryError(f"refused: {name} v{version} failed the evaluation gate: {why}")
        key = f"{name}/channels/{channel}.json"
        got = self.store.get(key)
        cur = json.loads(got[0]) if got else None
        if cur is not None and int(cur["version"]) == version:
            return cur
        history = ([int(cur["version"])] + list(cur.get("history", []))) if cur else []
        new = {"schema": CHANNEL_SCHEMA, "name": name, "channel": channel, "version": version,
               "history": history[:50], "updated_at": _now(), "actor": actor, "reason": reason,
               "action": "promote", "forced": force}
        self.store.put_cas(key, json.dumps(new, indent=2, sort_keys=True).encode(), got[1] if got else None)
        return new

    def rollback(self, name: str, channel: str = "prod", *, actor: str = "", reason: str = "") -> dict[str, Any]:
        key = f"{name}/channels/{channel}.json"
        got = self.store.get(key)
        if got is None:
            raise RegistryError(f"adapter {name} has no channel {channel!r} to roll back")
        cur = json.loads(got[0])
        if not cur.get("history"):
            raise RegistryError(f"{name}@{channel} is at v{cur['version']} with no earlier version to roll back to")
        prev, *rest = cur["history"]
        new = {"schema": CHANNEL_SCHEMA, "name": name, "channel": channel, "version": int(prev), "history": rest,
               "updated_at": _now(), "actor": actor, "reason": reason, "action": "rollback",
               "rolled_back_from": int(cur["version"]), "forced": False}
        self.store.put_cas(key, json.dumps(new, indent=2, sort_keys=True).encode(), got[1])
        return new


__all__ = ["AlreadyExists", "ConflictError", "Limits", "Registry", "RegistryError", "check_limits",
           "model_fingerprint", "sha256_file"]
