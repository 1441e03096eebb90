"""Helpers shared by the tests (conftest puts this folder on sys.path; --import-mode=importlib)."""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
HARNESS = REPO / "workloads" / "router" / "harness"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_harness(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"tw_harness_{name}", HARNESS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def make_adapter(d: Path, *, rank: int = 8, size: int = 4096, targets: tuple[str, ...] = ("q_proj", "v_proj")) -> Path:
    """A peft-shaped adapter folder (config + opaque weights) for registry tests."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "adapter_config.json").write_text(json.dumps({"r": rank, "lora_alpha": 16, "target_modules": list(targets),
                                                      "peft_type": "LORA"}))
    (d / "adapter_model.safetensors").write_bytes(bytes(range(256)) * (size // 256))
    return d


def train_config(base: str, **over: Any) -> Any:
    from tierwise_distill.config import TrainConfig

    # Calibrated on the synthetic triage task: eval exact match 0 -> 1.0 in ~30 s on one CPU thread.
    kw = {"max_steps": 150, "batch_size": 8, "learning_rate": 3e-3, "seed": 1, "checkpoint_every": 50,
          "num_threads": 1} | over
    return TrainConfig(base_model=base, **kw)

