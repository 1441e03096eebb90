"""The shipped training configs validate (TrainConfig is light: no torch needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tierwise_distill.config import TrainConfig

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.json"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_validate(path: Path) -> None:
    cfg = TrainConfig.load(path)
    assert cfg.rank <= 64 and cfg.hash() == TrainConfig.load(path).hash()


def test_qlora_config_is_selected_by_method() -> None:
    assert [TrainConfig.load(p).method for p in CONFIGS] == ["qlora", "lora"]


def test_overrides_change_the_hash() -> None:
    a = TrainConfig.load(CONFIGS[1])
    b = TrainConfig.load(CONFIGS[1], base_model="/other")
    assert a.hash() != b.hash() and b.base_model == "/other"


def test_no_module_imports_torch_at_import_time() -> None:
    """The light install (registry, CLI, hot-load) must work without torch: every module imports
    torch/transformers/peft lazily, inside the functions that train or evaluate."""
    import subprocess
    import sys

    code = ("import sys, tierwise_distill.cli, tierwise_distill.train, tierwise_distill.evaluate, "
            "tierwise_distill.config, tierwise_distill.synthetic; "
            "heavy = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]; "
            "assert not heavy, heavy")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
