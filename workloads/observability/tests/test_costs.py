"""The dual cost report: attribution arithmetic, input errors, formats, the kubectl snapshot."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tierwise_ledger import encode_line, read_local

from tierwise_observability import costs
from tierwise_observability.cli import app
from tierwise_observability.gpu_snapshot import snapshot_from_kube

from obs_helpers import PKG

T0 = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
SAMPLES = PKG / "samples"


def ledger_line(**e: object) -> str:
    return encode_line(e).decode()  # the router's own encoder (tierwise_ledger)


def entry(team: str, model: str, tier: int, pt: int, ct: int, usd: float, minutes: int = 10) -> str:
    return ledger_line(ts=(T0 + dt.timedelta(minutes=minutes)).isoformat(), team=team, model=model, tier=tier,
                       prompt_tokens=pt, completion_tokens=ct, cost_nano_usd=round(usd * 1e9))


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    led = tmp_path / "ledger.jsonl"
    led.write_text(entry("a", "qwen", 1, 200, 100, 0.003) + entry("b", "qwen", 1, 50, 50, 0.001)
                   + entry("a", "claude", 2, 1000, 0, 0.5)
                   + entry("a", "claude", 2, 1000, 0, 99.0, minutes=60 * 30)  # outside the period
                   + '0badc0de {"team":"x"}\n' + entry("a", "qwen", 1, 1, 1, 1.0)[:20])  # corrupt + torn
    use = tmp_path / "usage.jsonl"
    use.write_text(json.dumps({"schema": "gpu-usage/v1", "ts": "2026-01-05T01:00:00Z", "interval_s": 3600,
                               "node": "n1", "instance_type": "g6.12xlarge", "capacity_type": "on-demand",
                               "region": "us-east-1", "node_gpus": 4, "usd_per_hour": 4.0,
                               "pods": [{"namespace": "tierwise", "pod": "vllm-qwen-0", "team": "shared",
                                         "model": "qwen", "gpus": 2},
                                        {"namespace": "research", "pod": "ft", "team": "research", "gpus": 1}]})
                   + "\n")
    return led, use


def report(inputs: tuple[Path, Path], prices: costs.PriceBook | None = None) -> dict:
    return costs.build_report(read_local([inputs[0]]), [inputs[1]], prices or costs.PriceBook({}), T0,
                              T0 + dt.timedelta(days=1))


def test_attribution_splits_shared_gpus_by_token_share(inputs: tuple[Path, Path]) -> None:
    r = report(inputs)
    teams = {t["team"]: t for t in r["teams"]}
    # 4 GPUs at 4 USD/h for 1 h = 1 USD per GPU. Shared qwen (2 GPUs) split 300:100 tokens → a 1.5, b 0.5.
    assert teams["a"]["gpu_usd"] == pytest.approx(1.5)
    assert teams["b"]["gpu_usd"] == pytest.approx(0.5)
    assert teams["research"]["gpu_usd"] == pytest.approx(1.0)
    assert teams["a"]["gpu_hours"] == pytest.approx(1.5)
    assert r["idle"] == {"gpu_hours": pytest.approx(1.0), "gpu_usd": pytest.approx(1.0)}
    assert teams["a"]["bedrock_usd"] == pytest.approx(0.5)
    assert teams["a"]["tier1_chargeback_usd"] == pytest.approx(0.003)
    assert teams["a"]["spend_usd"] == pytest.approx(2.0)  # bedrock + GPU, chargeback not added
    t = r["totals"]
    assert t["gpu_usd"] == pytest.approx(4.0)
    assert t["spend_usd"] == pytest.approx(4.5)
    assert t["chargeback_recovery_ratio"] == pytest.approx(0.004 / 4.0)
    assert r["inputs"]["ledger_entries"] == 3
    assert r["inputs"]["ledger_skipped_corrupt_lines"] == 2


def test_shared_model_without_traffic_is_unused_not_charged(inputs: tuple[Path, Path]) -> None:
    led = inputs[0]
    led.write_text(entry("a", "claude", 2, 10, 0, 0.1))
    r = report(inputs)
    assert r["totals"]["gpu_shared_unused_usd"] == pytest.approx(2.0)
    assert {t["team"]: t["gpu_usd"] for t in r["teams"]} == {"a": 0, "research": pytest.approx(1.0)}
    assert r["totals"]["gpu_usd"] == pytest.approx(4.0)


def test_fails_on_missing_price_with_file_and_line(inputs: tuple[Path, Path]) -> None:
    rec = json.loads(inputs[1].read_text())
    del rec["usd_per_hour"]
    inputs[1].write_text("\n" + json.dumps(rec) + "\n")
    with pytest.raises(costs.InputError, match=r"usage.jsonl:2: no price for g6.12xlarge in us-east-1"):
        report(inputs)
    book = costs.PriceBook({("us-east-1", "g6.12xlarge"): 8.0})
    assert report(inputs, book)["totals"]["gpu_usd"] == pytest.approx(8.0)


def test_spot_priced_at_on_demand_is_flagged(inputs: tuple[Path, Path]) -> None:
    rec = json.loads(inputs[1].read_text())
    del rec["usd_per_hour"]
    rec["capacity_type"] = "spot"
    inputs[1].write_text(json.dumps(rec) + "\n")
    r = report(inputs, costs.PriceBook({("us-east-1", "g6.12xlarge"): 8.0}))
    assert any("spot" in n for n in r["inputs"]["notes"])


def test_fails_on_overallocated_node_and_bad_schema(inputs: tuple[Path, Path]) -> None:
    rec = json.loads(inputs[1].read_text())
    rec["pods"][0]["gpus"] = 4
    inputs[1].write_text(json.dumps(rec) + "\n")
    with pytest.raises(costs.InputError, match="request 5.0 GPUs on a 4-GPU node"):
        report(inputs)
    inputs[1].write_text(json.dumps({**rec, "schema": "v0"}) + "\n")
    with pytest.raises(costs.InputError, match="schema must be 'gpu-usage/v1'"):
        report(inputs)


def test_repo_price_book_loads(root: Path) -> None:
    book = costs.load_prices(root / "policies" / "prices" / "prices.json")
    assert book.usd_per_hour("us-east-1", "p4de.24xlarge") == pytest.approx(27.45)


@pytest.mark.parametrize("fmt", ["text", "json", "html"])
def test_cli_formats_render_the_committed_sample(fmt: str, tmp_path: Path) -> None:
    out, png = tmp_path / f"r.{fmt}", tmp_path / "c.png"
    res = CliRunner().invoke(app, ["costs", "-l", str(SAMPLES / "ledger.jsonl"), "-g", str(SAMPLES / "gpu-usage.jsonl"),
                                   "--prices", str(SAMPLES / "prices.json"), "--since", "2026-01-05T00:00Z",
                                   "--until", "2026-01-06T00:00Z", "--format", fmt, "-o", str(out),
                                   "--chart", str(png)])
    assert res.exit_code == 0, res.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = out.read_text()
    if fmt == "json":
        r = json.loads(text)
        t = r["totals"]
        assert t["spend_usd"] == pytest.approx(t["bedrock_usd"] + t["gpu_usd"])
        assert t["gpu_usd"] == pytest.approx(sum(x["gpu_usd"] for x in r["teams"]) + t["gpu_idle_usd"]
                                             + t["gpu_shared_unused_usd"])
        # GPU bill from the samples: p4de 27.45 x 24 h + spot g6 2.0712 x 24 h + g6 4.6016 x 12 h
        assert t["gpu_usd"] == pytest.approx(27.45 * 24 + 2.0712 * 24 + 4.6016 * 12)
        assert r["inputs"] == {"ledger_source": str(SAMPLES / "ledger.jsonl"), "ledger_segments": 1,
                               "ledger_entries": 420, "ledger_skipped_corrupt_lines": 1, "ledger_duplicates_dropped": 0,
                               "gpu_samples": 60, "prices": r["inputs"]["prices"], "notes": []}
        assert len(r["timeline"]) == 24 and r["timeline_granularity"] == "hour"
    elif fmt == "html":
        assert text.startswith("<!doctype html>") and "data:image/png;base64," in text
    else:
        assert "idle GPUs" in text and "assistants" in text


def test_cli_rejects_bad_period_and_input(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["costs", "-l", str(SAMPLES / "ledger.jsonl"), "--since", "yesterday"])
    assert r.exit_code == 2 and "expected an ISO date/time" in r.output
    bad = tmp_path / "u.jsonl"
    bad.write_text("{not json\n")
    r = CliRunner().invoke(app, ["costs", "-l", str(SAMPLES / "ledger.jsonl"), "-g", str(bad), "--since", "3650d"])
    assert r.exit_code == 2 and "u.jsonl:1: not JSON" in r.output


def test_snapshot_from_kubectl_json() -> None:
    nodes = {"items": [
        {"metadata": {"name": "n1", "labels": {"node.kubernetes.io/instance-type": "p4de.24xlarge",
                                               "karpenter.sh/capacity-type": "spot",
                                               "topology.kubernetes.io/region": "us-east-1"}},
         "status": {"capacity": {"nvidia.com/mig-3g.40gb": "14", "nvidia.com/mig-1g.10gb": "7", "cpu": "96"}}},
        {"metadata": {"name": "cpu-node", "labels": {}}, "status": {"capacity": {"cpu": "4"}}}]}
    pods = {"items": [
        {"metadata": {"name": "vllm-0", "namespace": "tierwise",
                      "labels": {"tierwise.io/team": "shared", "tierwise.io/model": "mistral-24b"}},
         "spec": {"nodeName": "n1", "containers": [{"resources": {"limits": {"nvidia.com/mig-3g.40gb": "1"}}}]},
         "status": {"phase": "Running"}},
        {"metadata": {"name": "ft", "namespace": "research"},
         "spec": {"nodeName": "n1", "containers": [{"resources": {"requests": {"nvidia.com/mig-1g.10gb": "2"}}}]},
         "status": {"phase": "Running"}},
        {"metadata": {"name": "done", "namespace": "research"},
         "spec": {"nodeName": "n1", "containers": [{"resources": {"limits": {"nvidia.com/mig-3g.40gb": "1"}}}]},
         "status": {"phase": "Succeeded"}}]}
    nss = {"items": [{"metadata": {"name": "research", "labels": {"tierwise.io/team": "research"}}}]}
    recs = snapshot_from_kube(nodes, pods, nss, T0, 300)
    assert len(recs) == 1
    r = recs[0]
    assert r["node_gpus"] == pytest.approx(14 * 3 / 7 + 7 / 7)  # 8 A100s as 2x3g + 1x1g each
    assert r["capacity_type"] == "spot" and r["ts"] == "2026-01-05T00:00:00Z"
    assert [(p["pod"], p["team"], p.get("model"), round(p["gpus"], 4)) for p in r["pods"]] == [
        ("ft", "research", None, round(2 / 7, 4)), ("vllm-0", "shared", "mistral-24b", round(3 / 7, 4))]
