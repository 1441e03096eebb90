"""Tier-2 exchanges → a versioned, scrubbed, deduplicated train/eval dataset.

Input: the opt-in export format ``tierwise.tier2-exchange/v1`` (JSON lines). The router's cost
ledger deliberately records no prompt text (request id, team, model, adapter, tier, tokens, cost,
status), so prompts and answers come from an explicit export that a team turns on for its Tier-2
traffic; the ledger, when given, is the authority on *which* requests count (Tier 2, status ok)::

    {"schema": "tierwise.tier2-exchange/v1", "request_id": "req-…", "ts": "2026-11-21T10:00:00Z",
     "team": "payments", "task": "billing", "teacher_model": "claude-haiku", "consent": true,
     "messages": [{"role": "user", "content": "…"}], "response": "…",
     "reference": "…" (optional gold answer), "finish_reason": "stop" (optional)}

Pipeline (each drop is counted by reason in the manifest): schema check → consent → ledger join →
task allow-list and length filters → PII scrub (prompt and response) → whitespace normalisation →
dedupe on (task, prompt) keeping the earliest → deterministic split by a seeded hash of the dedupe
key (an example never moves between train and eval when others are added) → files sorted by key.
The dataset id is the sha256 of the canonical JSON of the splits: same content, same id.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tierwise_distill.scrub import Scrubber

EXPORT_SCHEMA = "tierwise.tier2-exchange/v1"
DATASET_SCHEMA = "tierwise.distill-dataset/v1"


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: str
    content: str


class Exchange(BaseModel):
    model_config = ConfigDict(extra="ignore")
    schema_: str = Field(alias="schema")
    request_id: str = Field(min_length=1, max_length=200)
    ts: str = ""
    team: str = ""
    task: str = Field(min_length=1, max_length=64)
    teacher_model: str = ""
    consent: bool = False
    messages: list[Message] = Field(min_length=1)
    response: str
    reference: str | None = None
    finish_reason: str | None = None


class BuildConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tasks: list[str] | None = None  # allow-list; None = every task
    eval_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    seed: int = 0
    min_prompt_chars: int = 1
    max_prompt_chars: int = 8000
    min_response_chars: int = 1
    max_response_chars: int = 8000
    drop_truncated: bool = True  # finish_reason == "length": the teacher was cut off


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                yield {"__invalid__": f"{path}:{i}: {e.msg}"}


def read_router_ledger(path: str | Path) -> dict[str, dict[str, Any]]:
    """The router's ledger (``<crc32 hex8> <json>`` lines; torn/corrupt lines skipped), keyed by
    request id. Re-implemented here from the documented format: services do not import each other."""
    out: dict[str, dict[str, Any]] = {}
    for line in Path(path).read_bytes().split(b"\n"):
        crc, _, body = line.partition(b" ")
        try:
            if len(crc) == 8 and int(crc, 16) == zlib.crc32(body):
                e = json.loads(body)
                out[str(e.get("request_id"))] = e
        except ValueError:
            continue
    return out


def _norm(s: str) -> str:
    return " ".join(s.split())


def example_key(task: str, messages: list[dict[str, str]]) -> str:
    canon = json.dumps([task, [[m["role"], _norm(m["content"]).lower()] for m in messages]], separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


def split_of(key: str, seed: int, eval_fraction: float) -> str:
    h = int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16)
    return "eval" if h / 2**32 < eval_fraction else "train"


def canonical_id(splits: dict[str, list[dict[str, Any]]]) -> str:
    return hashlib.sha256(json.dumps(splits, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                          .encode()).hexdigest()


def build_dataset(exports: Iterable[str | Path], out_root: str | Path, scrubber: Scrubber, *,
                  config: BuildConfig | None = None, ledger: str | Path | None = None,
                  guard: str | Path | None = None) -> dict[str, Any]:
    """Build and write ``out_root/<id16>/{train,eval[,guard]}.jsonl`` + ``manifest.json``.
    ``guard``: a curated JSONL of {"task", "messages"|"prompt", "reference"} regression cases kept
    as their own split (never from traces). Returns the manifest."""
    cfg = config or BuildConfig()
    drops: Counter[str] = Counter()
    ledger_idx = read_router_ledger(ledger) if ledger else None
    pii_findings = 0
    seen: dict[str, dict[str, Any]] = {}
    total = 0
    for path in exports:
        for raw in read_jsonl(path):
            total += 1
            if "__invalid__" in raw:
                drops["invalid_json"] += 1
                continue
            if raw.get("schema") != EXPORT_SCHEMA:
                drops["wrong_schema"] += 1
                continue
            try:
                ex = Exchange.model_validate(raw)
            except ValidationError:
                drops["invalid_record"] += 1
                continue
            if not ex.consent:
                drops["no_consent"] += 1
                continue
            if ledger_idx is not None:
                le = ledger_idx.get(ex.request_id)
                if le is None:
                    drops["not_in_ledger"] += 1
                    continue
                if int(le.get("tier", 0)) != 2 or le.get("status") != "ok":
                    drops["ledger_not_tier2_ok"] += 1
                    continue
            if cfg.tasks is not None and ex.task not in cfg.tasks:
                drops["task_not_allowed"] += 1
                continue
            if cfg.drop_truncated and ex.finish_reason == "length":
                drops["teacher_truncated"] += 1
                continue
            prompt_chars = sum(len(m.content) for m in ex.messages)
            if not cfg.min_prompt_chars <= prompt_chars <= cfg.max_prompt_chars:
                drops["prompt_length"] += 1
                continue
            if not cfg.min_response_chars <= len(ex.response.strip()) <= cfg.max_response_chars:
                drops["response_length"] += 1
                continue
            texts = [m.content for m in ex.messages] + [ex.response] + ([ex.reference] if ex.reference else [])
            scrubbed = []
            dropped = ""
            for t in texts:
                r = scrubber.scrub(t)
                pii_findings += r.findings
                if r.text is None:
                    dropped = r.reason or "pii_blocked"
                    break
                scrubbed.append(_norm(r.text))
            if dropped:
                drops[dropped] += 1
                continue
            msgs = [{"role": m.role, "content": c} for m, c in zip(ex.messages, scrubbed, strict=False)]
            response = scrubbed[len(ex.messages)]
            reference = scrubbed[len(ex.messages) + 1] if ex.reference else None
            key = example_key(ex.task, msgs)
            rec = {"key": key, "task": ex.task, "messages": msgs, "response": response,
                   **({"reference": reference} if reference is not None else {}),
                   "source": {"request_id": ex.request_id, "ts": ex.ts, "team": ex.team,
                              "teacher_model": ex.teacher_model}}
            prev = seen.get(key)
            if prev is not None:
                drops["duplicate"] += 1
                if (ex.ts, ex.request_id) >= (prev["source"]["ts"], prev["source"]["request_id"]):
                    continue
            seen[key] = rec
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "eval": []}
    for key in sorted(seen):
        splits[split_of(key, cfg.seed, cfg.eval_fraction)].append(seen[key])
    if guard is not None:
        splits["guard"] = []
        for g in read_jsonl(guard):
            msgs = g.get("messages") or [{"role": "user", "content": g["prompt"]}]
            if "reference" not in g:
                raise ValueError(f"{guard}: every guard case needs a 'reference'")
            splits["guard"].append({"key": example_key(g["task"], msgs), "task": g["task"], "messages": msgs,
                                    "response": g["reference"], "reference": g["reference"], "source": {}})
        splits["guard"].sort(key=lambda r: r["key"])
    ds_id = canonical_id(splits)
    manifest = {
        "schema": DATASET_SCHEMA, "id": ds_id, "scrubber": scrubber.name, "config": cfg.model_dump(),
        "counts": {k: len(v) for k, v in splits.items()} | {"input_records": total, "pii_findings": pii_findings},
        "dropped": dict(sorted(drops.items())), "tasks": dict(sorted(Counter(r["task"] for r in seen.values()).items())),
        "ledger_joined": ledger is not None,
    }
    out = Path(out_root) / ds_id[:16]
    if not (out / "manifest.json").exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=".build-"))
        for name, rows in splits.items():
            with open(tmp / f"{name}.jsonl", "w", encoding="utf-8") as fh:
                for r in rows:
                    fh.write(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n")
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        try:
            os.rename(tmp, out)
        except OSError:  # built concurrently by someone else: same id, same content
            shutil.rmtree(tmp)
    return manifest | {"path": str(out)}


def load_split(dataset_dir: str | Path, split: str) -> list[dict[str, Any]]:
    p = Path(dataset_dir) / f"{split}.jsonl"
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()] if p.exists() else []


def verify_dataset(dataset_dir: str | Path) -> dict[str, Any]:
    """Recompute the content hash of a dataset folder; raise if it does not match its manifest."""
    d = Path(dataset_dir)
    m = json.loads((d / "manifest.json").read_text())
    splits = {s: load_split(d, s) for s in ("train", "eval", "guard") if (d / f"{s}.jsonl").exists()}
    got = canonical_id(splits)
    if got != m["id"]:
        raise ValueError(f"dataset {d} was modified: content hash {got[:16]} != manifest id {m['id'][:16]}")
    return m
