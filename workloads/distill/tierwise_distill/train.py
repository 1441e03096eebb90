"""LoRA / QLoRA fine-tuning: seeded, resumable from checkpoints, metrics per step (JSON lines).

Needs the ``train`` extra (torch, transformers, peft). A plain loop rather than ``Trainer`` so
that resuming is exact and easy to audit: the batch for step ``s`` is a pure function of
(seed, s), and a checkpoint holds the adapter weights, the AdamW state and the RNG state. Killing
the process and resuming therefore produces the same final weights as an uninterrupted run
(tested). Checkpoints are written to a temp folder and renamed (a kill mid-save leaves the
previous checkpoint intact); with ``checkpoint_url`` (``s3://…``) each is also uploaded, and a
fresh node resumes from the newest uploaded one (spot interruptions).

Output folder::

    metrics.jsonl            {"step", "loss", "lr", "tokens", "elapsed_s"} per step
    checkpoints/step-NNNNNN/ adapter_model.safetensors, adapter_config.json, optimizer.pt, state.json
    adapter/                 the final adapter (peft save_pretrained)
    train_summary.json       config, dataset id, base fingerprint, first/last loss
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from tierwise_distill.config import TrainConfig, lora_config, model_load_kwargs
from tierwise_distill.dataset import load_split
from tierwise_distill.registry import model_fingerprint


def render_prompt(tok: Any, messages: list[dict[str, str]]) -> str:
    """The exact prompt text the served model sees: the tokenizer's chat template (as vLLM applies
    it for /v1/chat/completions), else a plain ``role: content`` transcript."""
    if getattr(tok, "chat_template", None):
        return tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"


def target_text(example: dict[str, Any]) -> str:
    return " " + example["response"].strip()


def encode(tok: Any, example: dict[str, Any], max_len: int) -> tuple[list[int], list[int]]:
    p = tok(render_prompt(tok, example["messages"]), add_special_tokens=False)["input_ids"]
    t = tok(target_text(example), add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    ids = (p + t)[:max_len]
    labels = ([-100] * len(p) + t)[:max_len]
    return ids, labels


def batch_indices(n: int, step: int, batch_size: int, seed: int) -> list[int]:
    """Examples for ``step`` (0-based): a seeded permutation per epoch, consumed in order."""
    import torch

    out: list[int] = []
    pos = step * batch_size
    while len(out) < batch_size:
        epoch, off = divmod(pos, n)
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        perm = torch.randperm(n, generator=g).tolist()
        take = min(batch_size - len(out), n - off)
        out.extend(perm[off:off + take])
        pos += take
    return out


def _collate(encoded: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, Any]:
    import torch

    width = max(len(ids) for ids, _ in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), width), -100, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for i, (a, b) in enumerate(encoded):
        ids[i, : len(a)] = torch.tensor(a)
        labels[i, : len(b)] = torch.tensor(b)
        mask[i, : len(a)] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def _lr(cfg: TrainConfig, step: int) -> float:
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    return cfg.learning_rate


def latest_checkpoint(out_dir: Path) -> Path | None:
    ck = sorted((out_dir / "checkpoints").glob("step-*"))
    ck = [c for c in ck if (c / "state.json").exists()]
    return ck[-1] if ck else None


def _set_seed(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    torch.manual_seed(seed)


class _CheckpointSync:
    """Mirror checkpoints to a registry-style store (``s3://bucket/prefix``); pull the newest one
    when the local folder has none (a fresh spot node)."""

    def __init__(self, url: str | None, s3_client: Any = None) -> None:
        self.store = None
        if url:
            from tierwise_distill.store import open_store

            self.store = open_store(url, s3_client)

    def push(self, ck: Path) -> None:
        if self.store is None:
            return
        for p in sorted(ck.iterdir()):
            self.store.put(f"checkpoints/{ck.name}/{p.name}", p.read_bytes())
        self.store.put("checkpoints/latest.json", json.dumps({"name": ck.name}).encode())

    def pull(self, out_dir: Path) -> None:
        if self.store is None or latest_checkpoint(out_dir) is not None:
            return
        got = self.store.get("checkpoints/latest.json")
        if got is None:
            return
        name = json.loads(got[0])["name"]
        tmp = out_dir / "checkpoints" / f".pull-{name}"
        for key in self.store.list(f"checkpoints/{name}"):
            self.store.download(key, tmp / key.rsplit("/", 1)[1])
        os.replace(tmp, out_dir / "checkpoints" / name)


def train(cfg: TrainConfig, dataset_dir: str | Path, out_dir: str | Path, *, checkpoint_url: str | None = None,
          s3_client: Any = None, on_checkpoint: Any = None) -> dict[str, Any]:
    import torch
    from peft import get_peft_model, set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ds_manifest = json.loads((Path(dataset_dir) / "manifest.json").read_text())
    examples = load_split(dataset_dir, "train")
    if not examples:
        raise ValueError(f"dataset {dataset_dir} has no training examples")
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    _set_seed(cfg.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    tok = AutoTokenizer.from_pretrained(cfg.base_model)
    base = AutoModelForCausalLM.from_pretrained(cfg.base_model,
                                                **model_load_kwargs(cfg, cuda_available=torch.cuda.is_available()))
    if cfg.method == "qlora":  # pragma: no cover - needs a GPU
        from peft import prepare_model_for_kbit_training

        base = prepare_model_for_kbit_training(base)
    model = get_peft_model(base, lora_config(cfg))
    device = next(model.parameters()).device
    encoded = [encode(tok, e, cfg.max_seq_len) for e in examples]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)

    sync = _CheckpointSync(checkpoint_url, s3_client)
    sync.pull(out)
    start = 0
    ck = latest_checkpoint(out)
    if ck is not None:
        state = json.loads((ck / "state.json").read_text())
        if state["config_hash"] != cfg.hash() or state["dataset_id"] != ds_manifest["id"]:
            raise RuntimeError(f"checkpoint {ck} was made with another config or dataset; "
                               "use a new output folder")
        set_peft_model_state_dict(model, load_file(ck / "adapter_model.safetensors"))
        opt.load_state_dict(torch.load(ck / "optimizer.pt", weights_only=True))
        torch.set_rng_state(torch.load(ck / "rng.pt", weights_only=True))
        start = state["step"]
    metrics_path = out / "metrics.jsonl"
    # Keep the metric lines up to the checkpoint we resume from (later ones are recomputed).
    kept = []
    if metrics_path.exists():
        for line in metrics_path.read_text().splitlines():
            try:
                if json.loads(line)["step"] <= start:
                    kept.append(line)
            except (ValueError, KeyError):
                continue
    metrics_path.write_text("".join(k + "\n" for k in kept))

    model.train()
    t0 = time.perf_counter()
    with open(metrics_path, "a", encoding="utf-8") as mf:
        for step in range(start, cfg.max_steps):
            idx = batch_indices(len(encoded), step, cfg.batch_size, cfg.seed)
            batch = {k: v.to(device) for k, v in _collate([encoded[i] for i in idx], tok.pad_token_id).items()}
            lr = _lr(cfg, step)
            for g in opt.param_groups:
                g["lr"] = lr
            loss = model(**batch).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            rec = {"step": step + 1, "loss": round(float(loss.detach()), 6), "lr": lr,
                   "tokens": int((batch["labels"] != -100).sum()), "elapsed_s": round(time.perf_counter() - t0, 4)}
            mf.write(json.dumps(rec) + "\n")
            mf.flush()
            if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.max_steps:
                ck = _save_checkpoint(model, opt, out, step + 1, cfg, ds_manifest["id"])
                sync.push(ck)
                if on_checkpoint is not None:
                    on_checkpoint(step + 1, ck)

    final = out / "adapter"
    tmp = out / ".adapter-tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    losses = [json.loads(line)["loss"] for line in metrics_path.read_text().splitlines()]
    summary = {"config": cfg.model_dump(), "config_hash": cfg.hash(), "dataset_id": ds_manifest["id"],
               "base_model": {"path": cfg.base_model, "sha256": model_fingerprint(cfg.base_model)},
               "steps": cfg.max_steps, "resumed_from_step": start, "train_examples": len(examples),
               "first_loss": losses[0] if losses else None, "final_loss": losses[-1] if losses else None,
               "min_loss": min(losses) if losses else None, "adapter": str(final)}
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def _save_checkpoint(model: Any, opt: Any, out: Path, step: int, cfg: TrainConfig, dataset_id: str) -> Path:
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    root = out / "checkpoints"
    root.mkdir(exist_ok=True)
    tmp = root / f".tmp-step-{step:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    sd = {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(model).items()}
    save_file(sd, tmp / "adapter_model.safetensors")
    model.peft_config["default"].save_pretrained(tmp)
    torch.save(opt.state_dict(), tmp / "optimizer.pt")
    torch.save(torch.get_rng_state(), tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step, "config_hash": cfg.hash(), "dataset_id": dataset_id}))
    final = root / f"step-{step:06d}"
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in sorted(root.glob("step-*"))[: -cfg.keep_checkpoints]:
        shutil.rmtree(old, ignore_errors=True)
    return final
