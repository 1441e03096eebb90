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
