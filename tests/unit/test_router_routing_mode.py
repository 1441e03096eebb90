"""A team's `routing_mode` (triage | cascade | triage+cascade) reaches the router's ConfigMap as `mode`."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tierwise.config import ConfigError, load_environment
from tierwise.config.slices import Slices
from tierwise.constructs.serving.router_config import render_router_config
from tierwise.stacks.serving import router_config_props

REPO = Path(__file__).resolve().parents[2]


def _render(env):
    props = router_config_props(Slices.of(env).serving, model_urls={m.name: f"http://{m.name}:8000" for m in env.models},
                                rag_url="http://rag:8080", guardrails_url=None)
    return render_router_config(props)


def test_routing_mode_is_rendered_per_team_and_the_default_stays_implicit(tmp_path: Path):
    d = yaml.safe_load((REPO / "environments" / "dev.yaml").read_text())
    assert len(d["teams"]) >= 1
    base = {t["name"]: t for t in _render(load_environment(REPO / "environments" / "dev.yaml"))["teams"]}
    assert all("mode" not in t for t in base.values())  # default triage: the rendered file does not change
    d2 = copy.deepcopy(d)
    d2["teams"][0]["routing_mode"] = "triage+cascade"
    p = tmp_path / "dev.yaml"
    p.write_text(yaml.safe_dump(d2))
    teams = {t["name"]: t for t in _render(load_environment(p))["teams"]}
    first = d["teams"][0]["name"]
    assert teams[first]["mode"] == "triage+cascade"
    assert {k: v for k, v in teams[first].items() if k != "mode"} == base[first]
    assert all("mode" not in t for n, t in teams.items() if n != first)


def test_fails_on_an_unknown_routing_mode_with_its_path(tmp_path: Path):
    d = yaml.safe_load((REPO / "environments" / "dev.yaml").read_text())
    d["teams"][0]["routing_mode"] = "always-cascade"
    p = tmp_path / "dev.yaml"
    p.write_text(yaml.safe_dump(d))
    with pytest.raises(ConfigError, match=r"teams\[0\].*routing_mode"):
        load_environment(p)
