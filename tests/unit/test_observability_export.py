"""`tierwise export observability`: the one loader's facts for the observability workload.

The observability package renders from the checked-in exports (`workloads/observability/facts/<env>.json`)
and validates them against the committed schema; these tests keep both equal to what this package
produces from `environments/*.yaml`, so an environment edit that is not re-exported fails here.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from tierwise.config import list_environments, load_environment
from tierwise.exports import (observability_facts, observability_facts_json,
                              observability_schema_json)

REPO = Path(__file__).resolve().parents[2]
OBS = REPO / "workloads" / "observability"
SCHEMA_FILE = OBS / "tierwise_observability" / "observability-facts.schema.json"
REGENERATE = "run `make generate-observability`"
_spec = importlib.util.spec_from_file_location("tw_conftest", REPO / "tests" / "conftest.py")
_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_conftest)
run_cli = _conftest.run_cli


def test_committed_schema_is_the_generated_one() -> None:
    assert SCHEMA_FILE.read_text() == observability_schema_json(), REGENERATE


def test_every_environment_has_a_current_export() -> None:
    envs = list_environments()
    assert {p.stem for p in envs} == {p.stem for p in (OBS / "facts").glob("*.json")}, REGENERATE
    for path in envs:
        committed = (OBS / "facts" / f"{path.stem}.json").read_text()
        assert committed == observability_facts_json(load_environment(path)), f"{path.stem}: {REGENERATE}"


def test_exports_pass_the_committed_schema_and_the_schema_can_fail() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    validator.check_schema(schema)
    for path in list_environments():
        doc = json.loads(observability_facts_json(load_environment(path)))
        assert list(validator.iter_errors(doc)) == []
    bad = copy.deepcopy(doc)
    del bad["teams"][0]["tokens_per_day"]
    bad["schema_version"] = 2
    assert sorted(e.message for e in validator.iter_errors(bad)) == ["'tokens_per_day' is a required property",
                                                                    "1 was expected"]


def test_export_carries_the_model_defaults(tmp_path: Path) -> None:
    """Keys left out of the YAML come out with the model's defaults: the consumer never supplies its own."""
    d = yaml.safe_load((REPO / "environments" / "dev.yaml").read_text())
    for t in d["teams"]:
        t.pop("tokens_per_day", None)
    d.get("serving", {}).pop("queue_target_waiting", None)
    d.get("serving", {}).pop("monitoring_namespace", None)
    p = tmp_path / "sparse.yaml"
    p.write_text(yaml.safe_dump(d))
    env = load_environment(p)
    facts = observability_facts(env)
    # the model's documented defaults, as literals (dev.yaml happens to spell some of them out too)
    assert {t.tokens_per_day for t in facts.teams} == {5_000_000}
    assert facts.queue_target_waiting == 4
    assert facts.router_saturation_waiting == 16  # 4x the KEDA target, the rule written out
    assert facts.monitoring_namespace == "monitoring"
    # and a value the YAML does set wins over the default
    d["serving"]["queue_target_waiting"] = 7
    p.write_text(yaml.safe_dump(d))
    assert observability_facts(load_environment(p)).router_saturation_waiting == 28


def test_cli_export_matches_the_committed_file_and_schema(tierwise_exe: str) -> None:
    r = run_cli(tierwise_exe, "export", "observability", "--env", "prod")
    assert r.returncode == 0, r.stderr
    assert r.stdout == (OBS / "facts" / "prod.json").read_text()
    r = run_cli(tierwise_exe, "export", "observability", "--schema")
    assert r.returncode == 0 and r.stdout == SCHEMA_FILE.read_text()


@pytest.mark.parametrize("args", [[], ["--env", "dev", "--schema"]], ids=["neither", "both"])
def test_cli_export_needs_exactly_one_of_env_and_schema(tierwise_exe: str, args: list[str]) -> None:
    r = run_cli(tierwise_exe, "export", "observability", *args)
    assert r.returncode == 2 and "exactly one of --env" in r.stderr and r.stdout == ""


def test_cli_export_of_a_bad_environment_exits_2_names_the_field_and_writes_nothing(tmp_path: Path,
                                                                                   tierwise_exe: str) -> None:
    d = yaml.safe_load((REPO / "environments" / "dev.yaml").read_text())
    d["teams"][0]["monthly_budget_usd"] = -5
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(d))
    out = tmp_path / "facts" / "dev.json"
    r = run_cli(tierwise_exe, "export", "observability", "--env", str(broken), "--out", str(out))
    assert r.returncode == 2, r.stderr
    assert "teams[0].monthly_budget_usd" in r.stderr and "greater than 0" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists() and not out.parent.exists()
