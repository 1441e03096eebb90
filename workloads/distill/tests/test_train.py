"""Training: QLoRA configuration (cannot run without a GPU, so its configuration is what is tested),
reproducibility, kill -9 + resume, checkpoint mirroring to S3, per-step metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import train_config
from pydantic import ValidationError

from tierwise_distill.config import TrainConfig, lora_config, model_load_kwargs, quantization_config

pytestmark = pytest.mark.train

SHORT = {"max_steps": 40, "checkpoint_every": 10, "batch_size": 4}


def weights(adapter_dir: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(adapter_dir / "adapter_model.safetensors")


def assert_same_weights(a: Path, b: Path) -> None:
    import torch

    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys() and len(wa) > 0
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


def test_qlora_config_is_4bit_nf4_double_quant_bf16() -> None:
    import torch

    cfg = TrainConfig(base_model="/m", method="qlora")
    q = quantization_config(cfg)
    assert q.load_in_4bit and not q.load_in_8bit
    assert (q.bnb_4bit_quant_type, q.bnb_4bit_use_double_quant, q.bnb_4bit_compute_dtype) == ("nf4", True, torch.bfloat16)
    kw = model_load_kwargs(cfg, cuda_available=True)
    assert kw["quantization_config"] is not None and kw["device_map"] == {"": 0} and kw["dtype"] == torch.bfloat16
    fp4 = quantization_config(TrainConfig(base_model="/m", method="qlora", qlora_quant_type="fp4", qlora_double_quant=False))
    assert (fp4.bnb_4bit_quant_type, fp4.bnb_4bit_use_double_quant) == ("fp4", False)


def test_lora_config_has_no_quantization() -> None:
    import torch

    cfg = TrainConfig(base_model="/m", rank=4, alpha=8, target_modules=["q_proj"])
    assert quantization_config(cfg) is None
    assert model_load_kwargs(cfg, cuda_available=True) == {"dtype": torch.float32}
    lc = lora_config(cfg)
    assert (lc.r, lc.lora_alpha, set(lc.target_modules), lc.task_type) == (4, 8, {"q_proj"}, "CAUSAL_LM")


def test_fails_qlora_without_gpu_with_clear_message() -> None:
    with pytest.raises(RuntimeError, match="method=qlora needs a CUDA GPU"):
        model_load_kwargs(TrainConfig(base_model="/m", method="qlora"), cuda_available=False)


def test_fails_on_unknown_config_fields() -> None:
    with pytest.raises(ValidationError):
        TrainConfig(base_model="/m", learning_rat=1e-3)
    with pytest.raises(ValidationError):
        TrainConfig(base_model="/m", method="dora")


@pytest.fixture(scope="module")
def reference_run(tiny_model: dict, dataset: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from tierwise_distill.train import train

    out = tmp_path_factory.mktemp("ref")
    return train(train_config(tiny_model["base"], **SHORT), dataset["path"], out) | {"out": out}


def test_metrics_per_step_and_loss_falls(reference_run: dict) -> None:
    lines = [json.loads(x) for x in (reference_run["out"] / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == list(range(1, 41))
    assert all(set(x) == {"step", "loss", "lr", "tokens", "elapsed_s"} for x in lines)
    first, last = lines[0]["loss"], sum(x["loss"] for x in lines[-5:]) / 5
    assert last < first * 0.75, (first, last)
    assert reference_run["resumed_from_step"] == 0 and len(reference_run["base_model"]["sha256"]) == 64


def test_same_seed_same_weights(reference_run: dict, tiny_model: dict, dataset: dict, tmp_path: Path) -> None:
    from tierwise_distill.train import train

    train(train_config(tiny_model["base"], **SHORT), dataset["path"], tmp_path)
    assert_same_weights(reference_run["out"] / "adapter", tmp_path / "adapter")


CHILD = """
import sys
from tierwise_distill.config import TrainConfig
from tierwise_distill.train import train
cfg = TrainConfig.model_validate_json(sys.argv[1])
def on_ck(step, path):
    print(f"CKPT {step}", flush=True)
    if step == 20:
        sys.stdin.readline()  # hold here until the parent kills us: a deterministic interruption point
train(cfg, sys.argv[2], sys.argv[3], on_checkpoint=on_ck)
"""


def test_kill_9_and_resume_gives_the_uninterrupted_weights(reference_run: dict, tiny_model: dict, dataset: dict,
                                                           tmp_path: Path) -> None:
    from tierwise_distill.train import train

    cfg = train_config(tiny_model["base"], **SHORT)
    p = subprocess.Popen([sys.executable, "-c", CHILD, cfg.model_dump_json(), dataset["path"], str(tmp_path)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
    seen = []
    for line in p.stdout:
        seen.append(line.strip())
        if line.strip() == "CKPT 20":
            break
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert seen == ["CKPT 10", "CKPT 20"] and p.returncode == -signal.SIGKILL
    assert not (tmp_path / "adapter").exists()
    s = train(cfg, dataset["path"], tmp_path)
    assert s["resumed_from_step"] == 20
    steps = [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 41))  # each step logged once, the resumed ones recomputed
    assert_same_weights(reference_run["out"] / "adapter", tmp_path / "adapter")


def test_checkpoints_mirror_to_s3_and_a_fresh_node_resumes(reference_run: dict, tiny_model: dict, dataset: dict,
                                                           tmp_path: Path, s3_client: Any) -> None:
    from tierwise_distill.train import train

    cfg = train_config(tiny_model["base"], **SHORT)
    url = f"s3://{s3_client.test_bucket}/runs/r1"

    class Preempted(Exception):
        pass

    def preempt(step: int, _p: Path) -> None:
        if step == 30:
            raise Preempted

    with pytest.raises(Preempted):
        train(cfg, dataset["path"], tmp_path / "node-a", checkpoint_url=url, s3_client=s3_client, on_checkpoint=preempt)
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_client.test_bucket)["Contents"]]
    assert "runs/r1/checkpoints/step-000030/optimizer.pt" in keys and "runs/r1/checkpoints/latest.json" in keys
    s = train(cfg, dataset["path"], tmp_path / "node-b", checkpoint_url=url, s3_client=s3_client)
    assert s["resumed_from_step"] == 30
    assert_same_weights(reference_run["out"] / "adapter", tmp_path / "node-b" / "adapter")


def test_fails_to_resume_with_another_config(reference_run: dict, tiny_model: dict, dataset: dict) -> None:
    from tierwise_distill.train import train

    with pytest.raises(RuntimeError, match="another config or dataset"):
        train(train_config(tiny_model["base"], **(SHORT | {"learning_rate": 1e-3})), dataset["path"], reference_run["out"])
