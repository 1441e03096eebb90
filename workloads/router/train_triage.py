"""Train the triage classifier reproducibly (fixed seed) and write tierwise_router/triage_model.json.

    .venv-router/bin/python workloads/router/train_triage.py            # from the repo root

Data: ../shared/data/routing/ (RouteLLM strong/weak correctness labels, GSM8K + MMLU part 1;
see its README). Split: a stable hash of each row id puts ~30% of rows in a held-out test split that
training never sees (bench/routing.py evaluates on it; contaminated rows are dropped from the test
split, as upstream does). Labels:
- hard head: ``not weak_correct`` — r(q) ~ P(the small model fails), the score the threshold cuts;
- domain head: coarse subject group (math / stem / humanities), mapped to LoRA adapters by config.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from tierwise_router.triage import features  # noqa: E402

REPO = HERE.parent.parent
DATA = REPO / ".." / "shared" / "data" / "routing"
FILES = ("gsm8k.jsonl", "mmlu_part1.jsonl")
DIM = 1 << 13
SEED = 20240810
TEST_PERCENT = 30
MATH = {"GSM8K", "abstract_algebra", "college_mathematics", "elementary_mathematics",
        "high_school_mathematics", "econometrics", "formal_logic"}
STEM = {"anatomy", "astronomy", "clinical_knowledge", "college_biology", "college_chemistry",
        "college_computer_science", "college_medicine", "college_physics", "computer_security",
        "conceptual_physics", "electrical_engineering", "high_school_biology", "high_school_chemistry",
        "high_school_computer_science", "high_school_physics"}
DOMAINS = ["math", "stem", "humanities"]


def domain_of(subject: str) -> str:
    return "math" if subject in MATH else "stem" if subject in STEM else "humanities"


def split_of(row_id: str) -> str:
    h = int.from_bytes(hashlib.sha256(f"{SEED}:{row_id}".encode()).digest()[:4], "big")
    return "test" if h % 100 < TEST_PERCENT else "train"


def load_rows(data_dir: Path) -> list[dict]:
    rows = []
    for name in FILES:
        with open(data_dir / name) as fh:
            for line in fh:
                r = json.loads(line)
                r["split"] = split_of(r["id"])
                r["domain"] = domain_of(r["subject"])
                rows.append(r)
    return rows


def matrix(rows: list[dict], dim: int) -> sparse.csr_matrix:
    data, ind, ptr = [], [], [0]
    for r in rows:
        f = features(r["prompt"], dim)
        ind.extend(f.keys())
        data.extend(f.values())
        ptr.append(len(ind))
    return sparse.csr_matrix((np.array(data), np.array(ind), np.array(ptr)), shape=(len(rows), dim))


def train(data_dir: Path, c_hard: float = 1.0, c_dom: float = 4.0) -> dict:
    rows = [r for r in load_rows(data_dir) if r["split"] == "train"]
    x = matrix(rows, DIM)
    y_hard = np.array([0 if r["weak_correct"] else 1 for r in rows])
    y_dom = np.array([DOMAINS.index(r["domain"]) for r in rows])
    hard = LogisticRegression(C=c_hard, max_iter=2000, random_state=SEED).fit(x, y_hard)
    dom = LogisticRegression(C=c_dom, max_iter=2000, random_state=SEED).fit(x, y_dom)
    scores = hard.predict_proba(x)[:, 1]
    quantiles = np.percentile(scores, np.arange(101)).tolist()

    def rnd(a):
        return [float(f"{v:.5g}") for v in a]

    files_sha = {n: hashlib.sha256((data_dir / n).read_bytes()).hexdigest()[:16] for n in FILES}
    art = {
        "version": hashlib.sha256(json.dumps([files_sha, DIM, SEED, c_hard, c_dom]).encode()).hexdigest()[:12],
        "dim": DIM,
        "seed": SEED,
        "trained_on": {"files": files_sha, "rows": len(rows), "split": f"sha256(seed:id) % 100 >= {TEST_PERCENT}"},
        "hard": {"label": "not weak_correct", "bias": float(hard.intercept_[0]), "weights": rnd(hard.coef_[0]),
                 "score_quantiles": [float(f"{q:.6g}") for q in quantiles]},
        "domain": {"labels": DOMAINS, "bias": rnd(dom.intercept_), "weights": [rnd(w) for w in dom.coef_]},
    }
    return art


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=HERE / "tierwise_router" / "triage_model.json")
    args = ap.parse_args()
    art = train(args.data.resolve())
    args.out.write_text(json.dumps(art, separators=(",", ":")) + "\n")
    print(f"wrote {args.out} version={art['version']} rows={art['trained_on']['rows']} "
          f"bytes={args.out.stat().st_size}")


if __name__ == "__main__":
    main()
