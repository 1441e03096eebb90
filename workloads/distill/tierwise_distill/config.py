"""Training configuration (strict) and the pieces derived from it: the peft ``LoraConfig`` and, for
QLoRA, the bitsandbytes 4-bit ``BitsAndBytesConfig``. Light at import: transformers/peft are
imported inside the builders."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_model: str  # a local folder (or, on the cluster, one synced from S3 before training)
    method: Literal["lora", "qlora"] = "lora"
    rank: int = Field(8, ge=1, le=256)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj",
                                                               "gate_proj", "up_proj", "down_proj"])
    learning_rate: float = Field(3e-3, gt=0)
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    max_steps: int = Field(150, ge=1)
    batch_size: int = Field(8, ge=1)
    max_seq_len: int = Field(128, ge=8)
    seed: int = 0
    checkpoint_every: int = Field(25, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    # QLoRA (4-bit NF4 base, bf16 compute) — needs a CUDA GPU and bitsandbytes.
    qlora_quant_type: Literal["nf4", "fp4"] = "nf4"
    qlora_double_quant: bool = True
    qlora_compute_dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    # CPU threads for torch (None = torch's default). On a shared 2-core box 1 thread was ~3x faster
    # than 2 (measured). Part of the config hash: a different thread count can change float sums.
    num_threads: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if not self.target_modules:
            raise ValueError("target_modules must not be empty")
        return self

    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(), sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def load(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        return cls.model_validate(json.loads(Path(path).read_text()) | overrides)


def lora_config(cfg: TrainConfig) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                      target_modules=list(cfg.target_modules), bias="none", task_type="CAUSAL_LM")


def quantization_config(cfg: TrainConfig) -> Any | None:
    """``None`` for plain LoRA; for QLoRA a 4-bit ``BitsAndBytesConfig`` (NF4, double quantisation,
    bf16 compute — the QLoRA paper's recipe)."""
    if cfg.method != "qlora":
        return None
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=cfg.qlora_quant_type,
                              bnb_4bit_use_double_quant=cfg.qlora_double_quant,
                              bnb_4bit_compute_dtype=getattr(torch, cfg.qlora_compute_dtype))


def model_load_kwargs(cfg: TrainConfig, *, cuda_available: bool) -> dict[str, Any]:
    """Arguments for ``AutoModelForCausalLM.from_pretrained``. QLoRA without a GPU is refused with
    a clear message instead of failing deep inside bitsandbytes."""
    import torch

    if cfg.method == "qlora":
        if not cuda_available:
            raise RuntimeError("method=qlora needs a CUDA GPU (bitsandbytes 4-bit kernels); "
                               "use method=lora on CPU, or run the training Job on the GPU pool")
        return {"quantization_config": quantization_config(cfg), "device_map": {"": 0},
                "dtype": getattr(torch, cfg.qlora_compute_dtype)}
    return {"dtype": getattr(torch, cfg.dtype)}
