"""``tierwise-adapters`` through typer's runner, against a directory registry and an S3 one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import make_adapter
from typer.testing import CliRunner

from tierwise_distill.cli import app

runner = CliRunner()


def summary(tmp: Path) -> Path:
    p = tmp / "train_summary.json"
    p.write_text(json.dumps({"base_model": {"path": "/m/tiny", "sha256": "ab" * 32}, "dataset_id": "cd" * 32,
                             "config_hash": "h", "config": {"method": "lora"}, "first_loss": 6.1,
                             "final_loss": 1.5, "min_loss": 1.4, "steps": 150, "train_examples": 100}))
    return p


def gate(tmp: Path, passed: bool) -> Path:
    p = tmp / f"gate-{passed}.json"
    p.write_text(json.dumps({"passed": passed, "reasons": ["eval exact_match 0.100 does not beat base model 0.000 "
                                                            "by the margin 0.200"] if not passed else ["ok"],
                             "eval": {"n": 20, "candidate": 0.1 if not passed else 1.0, "base": 0.0}}))
    return p


def run(*args: str, env: dict | None = None) -> tuple[int, str, str]:
    r = runner.invoke(app, list(args), env=env)
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture(params=["dir", "s3"])
def reg_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "dir":
        return {"TIERWISE_DISTILL_REGISTRY_URL": str(tmp_path / "reg"), "TIERWISE_DISTILL_MAX_RANK": "16"}
    c = request.getfixturevalue("s3_client")
    return {"TIERWISE_DISTILL_REGISTRY_URL": f"s3://{c.test_bucket}/adapters", "TIERWISE_DISTILL_MAX_RANK": "16",
            "TIERWISE_DISTILL_S3_ENDPOINT_URL": request.getfixturevalue("s3_endpoint"),
            "TIERWISE_DISTILL_AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "test"}


def test_publish_list_show_promote_rollback(reg_env: dict[str, str], tmp_path: Path) -> None:
    ts = summary(tmp_path)
    for i, ok in enumerate([True, True, False]):
        code, out, err = run("publish", "billing", str(make_adapter(tmp_path / f"a{i}")), "--train-summary", str(ts),
                             "--gate-report", str(gate(tmp_path, ok)), env=reg_env)
        assert code == 0, err
        assert json.loads(out)["version"] == i + 1
    assert run("promote", "billing", "1", env=reg_env)[0] == 0
    code, out, _ = run("promote", "billing", "2", "--reason", "better", "--actor", "ci", env=reg_env)
    assert code == 0 and json.loads(out)["history"] == [1]
    code, out, err = run("promote", "billing", "3", env=reg_env)
    assert code == 2 and out == ""
    assert "error: refused: billing v3 failed the evaluation gate: eval exact_match 0.100 does not beat" in err
    code, out, _ = run("list", env=reg_env)
    assert json.loads(out) == [{"name": "billing", "versions": [1, 2, 3], "channels": {"prod": 2}}]
    code, out, _ = run("show", "billing", env=reg_env)
    m = json.loads(out)
    assert m["manifest"]["version"] == 2 and m["manifest"]["metrics"]["final_loss"] == 1.5
    assert m["manifest"]["base_model"] == {"name": "tiny", "sha256": "ab" * 32}
    assert json.loads(run("show", "billing@3", env=reg_env)[1])["manifest"]["gate"]["passed"] is False
    code, out, _ = run("rollback", "billing", "--reason", "canary errors", env=reg_env)
    assert code == 0 and json.loads(out)["version"] == 1
    assert json.loads(run("verify", "billing", "1", env=reg_env)[1])["ok"] is True


def test_fails_to_publish_over_rank_limit(reg_env: dict[str, str], tmp_path: Path) -> None:
    code, out, err = run("publish", "billing", str(make_adapter(tmp_path / "big", rank=64)),
                         "--train-summary", str(summary(tmp_path)), env=reg_env)
    assert code == 2 and "LoRA rank 64 exceeds this environment's limit 16" in err
    assert json.loads(run("list", env=reg_env)[1]) == []


def test_dataset_command_builds_with_fallback_warning(tmp_path: Path) -> None:
    from tierwise_distill import synthetic

    ex = synthetic.write_exports(tmp_path / "ex.jsonl", n=20)
    code, out, err = run("dataset", str(ex), "--out", str(tmp_path / "ds"), "--task", "triage", env={})
    assert code == 0 and "regex fallback" in err and json.loads(out)["scrubber"] == "fallback-regex"
    code, _, err = run("dataset", str(ex), "--out", str(tmp_path / "ds"), "--require-guardrails",
                       env={"TIERWISE_DISTILL_GUARDRAILS_URL": ""})
    assert code == 2 and "refuses the regex fallback" in err


def test_unknown_version_is_a_clear_error(tmp_path: Path) -> None:
    code, _, err = run("show", "billing@7", "--registry", str(tmp_path / "empty"))
    assert code == 2 and "adapter billing has no version 7" in err
