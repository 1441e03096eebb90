"""Checked-in generated files equal the generator's output; configs pass promtool; env loading."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tierwise_observability import environment, generate, rules, scrape
from tierwise_observability.environment import EnvironmentError_, ObsEnvironment

from obs_helpers import PKG, run_promtool


def test_checked_in_files_match_the_generator(root: Path) -> None:
    stale = generate.stale(root, PKG / "generated")
    assert not stale, f"run `tierwise observability generate`: stale {stale}"


def test_stale_detects_a_hand_edit(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "generated"
    generate.write(root, out)
    assert generate.stale(root, out) == []
    f = out / "dev" / "prometheus-rules.yaml"
    f.write_text(f.read_text().replace("> 14.4", "> 10"))
    (out / "dev" / "extra.yaml").write_text("x")
    assert generate.stale(root, out) == [Path("dev/extra.yaml"), Path("dev/prometheus-rules.yaml")]


def test_rules_follow_the_environment(envs: dict[str, ObsEnvironment]) -> None:
    prod = rules.render_rules(envs["prod"])
    budgets = {r["labels"]["team"]: r["expr"] for g in prod["groups"] for r in g["rules"]
               if r.get("record") == "team:tierwise_budget_usd:monthly"}
    assert budgets == {"assistants": "vector(140000)", "billing": "vector(50000)", "research": "vector(400000)"}
    sat = next(r for g in prod["groups"] for r in g["rules"] if r.get("alert") == "VllmQueueSaturated")
    assert sat["expr"] == f"vllm:num_requests_waiting > {envs['prod'].queue_target_waiting * 4}"


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


def test_environment_errors_name_the_yaml_path(root: Path, tmp_path: Path) -> None:
    d = yaml.safe_load((root / "environments" / "dev.yaml").read_text())
    bad = copy.deepcopy(d)
    del bad["teams"][0]["monthly_budget_usd"]
    p = tmp_path / "broken.yaml"
    p.write_text(yaml.safe_dump(bad))
    with pytest.raises(EnvironmentError_, match=r"broken.yaml: teams\[0\].monthly_budget_usd: required"):
        environment.load(p)
    bad = copy.deepcopy(d)
    bad["teams"][0]["monthly_budget_usd"] = "lots"
    p.write_text(yaml.safe_dump(bad))
    with pytest.raises(EnvironmentError_, match=r"teams\[0\].monthly_budget_usd: expected"):
        environment.load(p)
