"""Train injection-v2 and write tierwise_guardrails/model/injection-v2.npz (+ .json card).

    .venv-guardrails/bin/pip install -e 'workloads/guardrails[train]'
    .venv-guardrails/bin/python workloads/guardrails/scripts/train_injection_v2.py

Only the train sources are fitted and only the validation sources set thresholds
(tierwise_guardrails/training/heldout.py); bench/guardrails.py reports the held-out test sources.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tierwise_guardrails.training.train_v2 import save, train

OUT = Path(__file__).resolve().parents[1] / "tierwise_guardrails" / "model" / "injection-v2.npz"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--C", type=float, default=1.0)
    args = ap.parse_args()
    arrays, meta, tok = train(args.dim, args.C)
    save(arrays, meta, tok, args.out)
    print(json.dumps({k: meta[k] for k in ("train_units", "thresholds")}, indent=1))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
