"""`cdktn synth` (cdktf.json -> `tierwise app`) produces the same stacks as `tierwise synth`, plus the
facts file the policy gate reads — the path users take with `cdktn deploy`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.synth
REPO = Path(__file__).resolve().parents[2]


def test_cdktn_synth_matches_tierwise_synth(synthesized, tmp_path):
    env = {**os.environ, "TIERWISE_ENV": "dev", "CHECKPOINT_DISABLE": "1",
           "PATH": f"{REPO / 'node_modules' / '.bin'}:{os.environ['PATH']}"}
    r = subprocess.run([str(REPO / "node_modules" / ".bin" / "cdktn"), "synth", "--output", str(tmp_path / "out")],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    ours = synthesized["dev"]
    theirs = tmp_path / "out"
    assert json.loads((theirs / "tierwise.json").read_text()) == json.loads((ours / "tierwise.json").read_text())
    names = sorted(p.parent.name for p in (ours / "stacks").glob("*/cdk.tf.json"))
    assert names == sorted(p.parent.name for p in (theirs / "stacks").glob("*/cdk.tf.json"))
    for name in names:
        assert (ours / "stacks" / name / "cdk.tf.json").read_bytes() == (theirs / "stacks" / name / "cdk.tf.json").read_bytes(), name
