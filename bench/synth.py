"""Synthesis cost: all shipped environments in one process vs one environment vs bare `cdktn synth`.

    .venv/bin/python bench/synth.py [--repeat N] [--label NAME]

Each measurement runs in a fresh child process (the jsii provider bindings load once per process);
wall time and peak RSS come from os.wait4 on that child (its whole process tree's largest RSS).
Writes bench/results/synth/<label>.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _meta import REPO, metadata, write_result  # noqa: E402

ENV = {**os.environ, "CHECKPOINT_DISABLE": "1", "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
       "PATH": f"{REPO / 'node_modules' / '.bin'}:{REPO / '.venv' / 'bin'}:{os.environ['PATH']}"}


def worker(which: str, out: str) -> None:
    from tierwise.app import synth
    from tierwise.config import list_environments, load_environment

    paths = list_environments() if which == "all" else [REPO / "environments" / f"{which}.yaml"]
    for p in paths:
        env = load_environment(p)
        synth(env, Path(out) / env.name)


def measure(cmd: list[str], cwd: Path, extra_env: dict | None = None) -> tuple[float, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env={**ENV, **(extra_env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024  # KiB -> MiB


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--label", default="default")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(a.worker, a.out)
        return
    py = str(REPO / ".venv" / "bin" / "python")
    envs = sorted(p.stem for p in (REPO / "environments").glob("*.yaml"))
    scenarios = {
        f"all_{len(envs)}_environments_one_process": lambda d: measure([py, __file__, "--worker", "all", "--out", d], REPO),
        "one_environment_dev": lambda d: measure([py, __file__, "--worker", "dev", "--out", d], REPO),
        "bare_cdktn_synth_dev": lambda d: measure([str(REPO / "node_modules" / ".bin" / "cdktn"), "synth", "--output", d],
                                                  REPO, {"TIERWISE_ENV": "dev"}),
    }
    results = {}
    for name, fn in scenarios.items():
        fn(tempfile.mkdtemp(prefix="bench-synth-"))  # warmup (page cache, node compile cache)
        walls, rss = [], []
        for _ in range(a.repeat):
            w, m = fn(tempfile.mkdtemp(prefix="bench-synth-"))
            walls.append(w)
            rss.append(m)
        results[name] = {"wall_s_median": round(statistics.median(walls), 3), "wall_s_samples": [round(w, 3) for w in walls],
                         "peak_rss_mib_max": round(max(rss), 1), "peak_rss_mib_samples": [round(m, 1) for m in rss]}
        print(f"{name:<40} wall {results[name]['wall_s_median']:>7.2f} s   peak RSS {results[name]['peak_rss_mib_max']:>7.0f} MiB")
    n = len(envs)
    all_key = f"all_{n}_environments_one_process"
    results["per_environment_wall_s_when_batched"] = round(results[all_key]["wall_s_median"] / n, 3)
    path = write_result("synth", a.label, {**metadata(a.label, environments=envs, repeat=a.repeat), "metrics": results})
    print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
