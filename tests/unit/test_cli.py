"""CLI contract: exit codes, one readable error, nothing written on bad input."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("tw_conftest", REPO / "tests" / "conftest.py")
_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_conftest)
run_cli = _conftest.run_cli


def _tree_digest(d: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(d.rglob("*")):
        h.update(str(p.relative_to(d)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def test_bad_environment_exits_2_names_field_and_writes_nothing(tmp_path, tierwise_exe):
    out = tmp_path / "cdktf.out"
    (out / "stacks" / "dev-network").mkdir(parents=True)
    (out / "stacks" / "dev-network" / "cdk.tf.json").write_text('{"previous": "synth"}')
    before = _tree_digest(out)
    d = yaml.safe_load((REPO / "environments" / "dev.yaml").read_text())
    d["gpu_pools"][1]["gpu_limit"] = 0
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(d))
    r = run_cli(tierwise_exe, "synth", "--env", str(broken), "--out", str(out))
    assert r.returncode == 2, r.stderr
    assert "gpu_pools[1].gpu_limit" in r.stderr and "greater than or equal to 1" in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert _tree_digest(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.yaml", "cdktf.out"]  # no temp dirs left


def test_envs_lists_shipped_environments(tierwise_exe):
    r = run_cli(tierwise_exe, "envs")
    assert r.returncode == 0
    names = [line.split()[0] for line in r.stdout.splitlines()]
    assert "dev" in names and "prod" in names


def test_unknown_subcommand_without_plugin_exits_2(tierwise_exe):
    r = run_cli(tierwise_exe, "no-such-plugin-xyz")
    assert r.returncode == 2 and "tierwise-no-such-plugin-xyz" in r.stderr


def test_forked_environment_without_observability_files_exits_2_with_the_command(tmp_path, tierwise_exe):
    """A fork adds `environments/<new>.yaml` but has not generated its observability files yet: one message naming
    the missing file and the command that writes it, no traceback, nothing written."""
    d = yaml.safe_load((REPO / "environments" / "dev.yaml").read_text())
    d["name"] = "fork-without-observability"
    env = tmp_path / "fork.yaml"
    env.write_text(yaml.safe_dump(d))
    out = tmp_path / "cdktf.out"
    r = run_cli(tierwise_exe, "synth", "--env", str(env), "--out", str(out))
    assert r.returncode == 2, r.stderr[-2000:]
    assert "fork-without-observability" in r.stderr and "make generate-observability" in r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fork.yaml"]  # no temp dirs left
