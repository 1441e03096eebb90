"""Benchmark: the whole `tierwise policy` gate on a synthesized prod versus bare checkov on the same stacks,
interleaved in one run (same host, same load). Target: gate <= 1.5x bare checkov (median wall time).

    .venv/bin/python bench/policy.py --synth-dir /tmp/prod.out [--reps 3] [--label NAME]

Both sides are measured as fresh processes (what CI runs): the gate is `tierwise policy -d DIR -f json`,
bare is `checkov -d DIR/stacks --framework terraform_json --skip-download -o json`. Writes
bench/results/policy/<label>.json with raw samples.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def timed(cmd: list[str]) -> tuple[float, int]:
    t = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/tmp")
    return time.perf_counter() - t, p.returncode


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--synth-dir", type=Path, required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--label", default="prod")
    a = ap.parse_args()
    d = a.synth_dir.resolve()
    gate = [str(BIN / "tierwise"), "policy", "-d", str(d), "-f", "json"]
    bare = [str(BIN / "checkov"), "-d", str(d / "stacks"), "--framework", "terraform_json", "--skip-download", "-o", "json"]
    timed(bare), timed(gate)  # warmup: page cache, .pyc
    samples = {"gate_s": [], "bare_checkov_s": []}
    rcs = {"gate": set(), "bare": set()}
    for _ in range(a.reps):  # interleaved so load changes hit both sides
        s, rc = timed(bare); samples["bare_checkov_s"].append(round(s, 3)); rcs["bare"].add(rc)
        s, rc = timed(gate); samples["gate_s"].append(round(s, 3)); rcs["gate"].add(rc)
    med = {k: statistics.median(v) for k, v in samples.items()}
    files = sorted((d / "stacks").glob("*/cdk.tf.json"))
    sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    out = {
        "scenario": "policy", "label": a.label,
        "metadata": {"git_sha": sha, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                     "python": platform.python_version(), "host": platform.node(), "cpus": os.cpu_count(),
                     "loadavg_at_end": os.getloadavg(), "reps": a.reps, "warmup": 1,
                     "config_hash": hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16],
                     "stacks": len(files), "gate_cmd": " ".join(gate[1:]), "bare_cmd": " ".join(bare[1:])},
        "metrics": {"gate_median_s": round(med["gate_s"], 3), "bare_checkov_median_s": round(med["bare_checkov_s"], 3),
                    "ratio_gate_over_bare": round(med["gate_s"] / med["bare_checkov_s"], 3),
                    "target_ratio": 1.5,
                    # a crashed run (exit >= 2) is fast and meaningless: such a result is invalid, never "met"
                    "valid": rcs["gate"] <= {0, 1} and rcs["bare"] <= {0, 1},
                    "met": rcs["gate"] <= {0, 1} and rcs["bare"] <= {0, 1} and med["gate_s"] / med["bare_checkov_s"] <= 1.5,
                    "gate_exit_codes": sorted(rcs["gate"]), "bare_exit_codes": sorted(rcs["bare"])},
        "samples": samples,
    }
    dest = REPO / "bench" / "results" / "policy" / f"{a.label}.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["metrics"], indent=2))


if __name__ == "__main__":
    main()
