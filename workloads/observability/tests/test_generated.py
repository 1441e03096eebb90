"""Checked-in generated files equal the generator's output for the checked-in exports; configs pass
promtool; a wrong or old export fails naming the field (environment.py holds no defaults of its own)."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tierwise_observability import environment, generate, rules, scrape
from tierwise_observability.cli import obs_app
from tierwise_observability.environment import FactsError, ObsEnvironment

from obs_helpers import PKG, run_promtool


def test_checked_in_files_match_the_generator(envs: dict[str, ObsEnvironment]) -> None:
    stale = generate.stale(generate.render(envs.values()), PKG / "generated")
    assert not stale, f"run `make generate-observability`: stale {stale}"


def test_every_generated_folder_has_an_export(root: Path) -> None:
    facts = {p.stem for p in (PKG / "facts").glob("*.json")}
    assert {p.name for p in (PKG / "generated").iterdir()} == facts
    assert {p.stem for p in (root / "environments").glob("*.yaml")} == facts, \
        "one export per environment: run `make generate-observability`"


def test_stale_detects_a_hand_edit(envs: dict[str, ObsEnvironment], tmp_path: Path) -> None:
    out = tmp_path / "generated"
    want = generate.render(envs.values())
    generate.write(want, out)
    assert generate.stale(want, out) == []
    f = out / "dev" / "prometheus-rules.yaml"
    f.write_text(f.read_text().replace("> 14.4", "> 10"))
    (out / "dev" / "extra.yaml").write_text("x")
    (out / "gone").mkdir()
    (out / "gone" / "prometheus.yaml").write_text("x")  # an environment whose export was removed
    assert generate.stale(want, out) == [Path("dev/extra.yaml"), Path("dev/prometheus-rules.yaml"),
                                         Path("gone/prometheus.yaml")]
    only_prod = generate.render([envs["prod"]])
    assert generate.stale(only_prod, out, {"prod"}) == []  # one environment's run leaves the others alone
    generate.write(want, out)
    assert generate.stale(want, out) == [] and not (out / "gone").exists()


def test_rules_follow_the_environment(envs: dict[str, ObsEnvironment]) -> None:
    prod = rules.render_rules(envs["prod"])
    budgets = {r["labels"]["team"]: r["expr"] for g in prod["groups"] for r in g["rules"]
               if r.get("record") == "team:tierwise_budget_usd:monthly"}
    assert budgets == {"assistants": "vector(140000)", "billing": "vector(50000)", "research": "vector(400000)"}
    sat = next(r for g in prod["groups"] for r in g["rules"] if r.get("alert") == "VllmQueueSaturated")
    assert sat["expr"] == "vllm:num_requests_waiting > 16"  # prod: queue_target_waiting 4, the router's 4x


def test_alert_list_is_the_documented_one(envs: dict[str, ObsEnvironment]) -> None:
    names = rules.alert_names(rules.render_rules(envs["dev"]))
    assert names == ["TeamBudgetBurnFast", "TeamBudgetBurnSlow", "TeamBudgetExhausted", "VllmQueueSaturated",
                     "VllmKvCacheFull", "GpuIdleWaste", "RouterTier2FallbackSpike", "RouterErrorRatioHigh",
                     "RouterLatencyP99High", "RouterTtftP99High", "GuardrailBlockSpike", "TierwiseTargetDown"]
    readme = (PKG / "README.md").read_text()
    for n in names:
        assert f"#### {n}" in readme, f"README has no runbook section for {n}"


def test_for_override_changes_only_for(envs: dict[str, ObsEnvironment]) -> None:
    a = rules.render_rules(envs["dev"])
    b = rules.render_rules(envs["dev"], rules.RuleOptions(for_override="0s"))
    for ga, gb in zip(a["groups"], b["groups"], strict=True):
        for ra, rb in zip(ga["rules"], gb["rules"], strict=True):
            if "alert" in ra:
                assert rb["for"] == "0s"
                assert {k: v for k, v in ra.items() if k != "for"} == {k: v for k, v in rb.items() if k != "for"}


def test_scrape_config_passes_promtool(promtool: str, envs: dict[str, ObsEnvironment], tmp_path: Path) -> None:
    """Debian's Prometheus is built without Kubernetes discovery, so kubernetes_sd is swapped for an
    equivalent file_sd before `promtool check config`; the relabelling itself runs in the e2e test."""
    (tmp_path / "prometheus-rules.yaml").write_text(yaml.safe_dump(rules.render_rules(envs["prod"])))
    cfg = scrape.prometheus_config(envs["prod"], ["prometheus-rules.yaml"])
    for job in cfg["scrape_configs"]:
        sd = job.pop("kubernetes_sd_configs")
        assert sd and sd[0]["role"] == "pod"
        job["file_sd_configs"] = [{"files": ["targets.json"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(cfg))
    res = run_promtool(promtool, "check", "config", "prometheus.yml", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr


def test_helm_values_carry_the_same_rules_and_jobs(envs: dict[str, ObsEnvironment]) -> None:
    r = rules.render_rules(envs["dev"])
    v = scrape.helm_values(envs["dev"], r)
    rec, alt = v["serverFiles"]["recording_rules.yml"], v["serverFiles"]["alerting_rules.yml"]
    assert rec["groups"] + alt["groups"] == sorted(r["groups"], key=lambda g: "record" not in g["rules"][0])
    jobs = yaml.safe_load(v["extraScrapeConfigs"])
    assert [j["job_name"] for j in jobs] == list(rules.JOBS)


def _facts(env: str = "dev") -> dict[str, Any]:
    return json.loads((PKG / "facts" / f"{env}.json").read_text())


def _fails(doc: Any, tmp_path: Path, pattern: str) -> None:
    p = tmp_path / "broken.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(FactsError, match=pattern):
        environment.load(p)


def test_wrong_export_fails_naming_the_field(root: Path, tmp_path: Path) -> None:
    d = _facts()
    assert environment.from_facts(copy.deepcopy(d)).name == "dev"
    bad = copy.deepcopy(d)
    del bad["teams"][0]["monthly_budget_usd"]
    _fails(bad, tmp_path, r"broken.json: 1 invalid field .*\n  teams\[0\]\.monthly_budget_usd: required, missing$")
    bad = copy.deepcopy(d)
    bad["teams"][0]["monthly_budget_usd"] = "lots"
    _fails(bad, tmp_path, r"teams\[0\]\.monthly_budget_usd: 'lots' is not of type 'number'")
    bad = copy.deepcopy(d)
    bad["teams"][0]["tokens_per_day"] = -1
    _fails(bad, tmp_path, r"teams\[0\]\.tokens_per_day: -1 is less than the minimum of 0")
    bad = copy.deepcopy(d)
    bad["models"][0]["lora_adapters"] = []  # a YAML key, not an export field
    _fails(bad, tmp_path, r"models\[0\]: Additional properties are not allowed \('lora_adapters' was unexpected\)")
    bad = copy.deepcopy(d)
    del bad["router_saturation_waiting"], bad["monitoring_namespace"]
    _fails(bad, tmp_path, r"2 invalid fields .*\n  monitoring_namespace: required, missing\n"
                          r"  router_saturation_waiting: required, missing$")


def test_old_or_foreign_export_fails_with_the_version(root: Path, tmp_path: Path) -> None:
    bad = _facts()
    bad["schema_version"] = 0
    _fails(bad, tmp_path, r"broken.json: schema_version: this tierwise-observability reads version 1, got 0; export again")
    _fails({"kind": "something-else"}, tmp_path, r"kind: 'tierwise/observability-facts' was expected")
    _fails([], tmp_path, r"\(top level\): \[\] is not of type 'object'")
    (tmp_path / "yaml.json").write_text("name: dev\n")
    with pytest.raises(FactsError, match=r"yaml.json: not JSON .*tierwise export observability"):
        environment.load(tmp_path / "yaml.json")


def test_environment_model_holds_no_defaults() -> None:
    """Defaults live in the platform's model only: every field here comes from the export."""
    for cls in (environment.ObsEnvironment, environment.TeamSpec, environment.ModelSpec):
        with_default = [f.name for f in dataclasses.fields(cls)
                        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING]
        assert with_default == [], f"{cls.__name__}: {with_default}"


def test_export_file_names_its_environment(root: Path, tmp_path: Path) -> None:
    (tmp_path / environment.FACTS_DIR).mkdir(parents=True)
    (tmp_path / environment.FACTS_DIR / "staging.json").write_text(json.dumps(_facts()))
    with pytest.raises(FactsError, match=r"staging.json: environment: 'dev' does not match the file name"):
        environment.all_environments(tmp_path)


def test_cli_renders_an_export_from_stdin_and_checks(root: Path, tmp_path: Path) -> None:
    """`tierwise export observability --env prod | tierwise observability generate --facts - --out DIR`."""
    runner = CliRunner()
    prod = (PKG / "facts" / "prod.json").read_text()
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "keep.yaml").write_text("another environment's folder")
    r = runner.invoke(obs_app, ["generate", "--facts", "-", "--out", str(tmp_path)], input=prod)
    assert r.exit_code == 0, r.output
    for f in (PKG / "generated" / "prod").iterdir():
        assert (tmp_path / "prod" / f.name).read_text() == f.read_text()
    assert (tmp_path / "dev" / "keep.yaml").exists()
    r = runner.invoke(obs_app, ["generate", "--facts", "-", "--out", str(tmp_path), "--check"], input=prod)
    assert r.exit_code == 0 and "up to date" in r.output
    (tmp_path / "prod" / "prometheus.yaml").write_text("edited")
    r = runner.invoke(obs_app, ["generate", "--facts", "-", "--out", str(tmp_path), "--check"], input=prod)
    assert r.exit_code == 1 and "stale: " in r.output and "prometheus.yaml" in r.output


def test_cli_bad_export_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    bad = json.loads((PKG / "facts" / "prod.json").read_text())
    bad["teams"][1]["cost_center"] = 2002
    r = CliRunner().invoke(obs_app, ["generate", "--facts", "-", "--out", str(tmp_path / "out")], input=json.dumps(bad))
    assert r.exit_code == 2
    assert "error: <stdin>: 1 invalid field" in r.output and "teams[1].cost_center: 2002 is not of type 'string'" in r.output
    assert not (tmp_path / "out").exists()
    r = CliRunner().invoke(obs_app, ["generate", "--facts", "-", "--facts", "-", "--out", str(tmp_path)], input="{}")
    assert r.exit_code == 2 and "once" in r.output
