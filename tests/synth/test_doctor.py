"""`tierwise doctor`: releases, images, Bedrock and the deploy checks of a synthesized environment, exit 1 on a problem."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest


def _doctor(exe: str, synth_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([exe, "doctor", "-d", str(synth_dir)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CHECKPOINT_DISABLE": "1"})


@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_doctor_reports_every_release_image_and_check(tierwise_exe, synthesized, env_name: str) -> None:
    r = _doctor(tierwise_exe, synthesized[env_name])
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    for chart in ("karpenter 1.14.1", "gpu-operator v25.10.1", "dra-driver-nvidia-gpu 0.4.0", "kueue 0.19.2", "lws 0.10.0",
                  "keda 2.20.2", "qdrant 1.19.0", "prometheus 27.45.0"):
        assert f"PASS  " in out and f"chart {chart}" in out, chart
    assert "crane copy nvcr.io/nvidia/gpu-operator:v25.10.1 " in out
    assert "vllm/vllm-openai:v0.32.0  <- cache docker-hub" in out
    for cid in ("TW-DEPLOY-001", "TW-DEPLOY-002", "TW-DEPLOY-003", "TW-DEPLOY-004"):
        assert f"PASS  {cid}" in out
    assert "ready to deploy" in out


def test_doctor_fails_when_the_dra_plugin_lands_on_every_gpu_node(tierwise_exe, synthesized, tmp_path) -> None:
    """The old item-3 defect, reintroduced in synthesized output: the DRA kubelet plugin without a node selector."""
    out = tmp_path / "prod"
    shutil.copytree(synthesized["prod"], out)
    f = out / "stacks" / "prod-capacity" / "cdk.tf.json"
    doc = json.loads(f.read_text())
    for rel in doc["resource"]["helm_release"].values():
        if rel["chart"] == "dra-driver-nvidia-gpu":
            values = json.loads(rel["values"][0])
            values["kubeletPlugin"].pop("nodeSelector")
            rel["values"] = [json.dumps(values)]
    f.write_text(json.dumps(doc))
    r = _doctor(tierwise_exe, out)
    assert r.returncode == 1
    assert "FAIL  TW-DEPLOY-002" in r.stdout and "2 components" in r.stdout


def test_doctor_refuses_a_folder_that_is_not_a_synth_output(tierwise_exe, tmp_path) -> None:
    r = _doctor(tierwise_exe, tmp_path)
    assert r.returncode == 2 and "not a synth output" in r.stderr
