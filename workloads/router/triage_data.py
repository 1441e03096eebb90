"""The routing data as the triage trainers see it: the RouteLLM label files, the stable train/test split and folds,
the coarse domains, the hashed bag-of-words matrix, and the two plain logistic heads every recipe shares (v1's
"weak fails" and the domain head). Split out of ``train_triage.py``; see its docstring for the whole recipe."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from tierwise_router.triage import features

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FILES = ("gsm8k.jsonl", "mmlu_part1.jsonl")
DIM = 1 << 13
SEED = 20240810
TEST_PERCENT = 30
FOLDS = 5
C_DOM = 4.0
MAX_TOKENS = 40  # word pieces: p99 decision 12.2 ms on a quiet core at 64 in fp32 (bench), over the 10 ms target
# The encoder's precision. fp32 at 40 pieces measured p50 11.0 / p99 13.0 ms for the whole decision on a
# quiet core (bench/results/routing/triage-v2-timing.json at bc77bb9); int8 (dynamic, per-channel weights)
# runs the forward pass ~2.7x faster (encoder_vs_fp32 in that file now), so the artifact is trained and
# served on int8 vectors.
PRECISION = "int8"
MATH = {"GSM8K", "abstract_algebra", "college_mathematics", "elementary_mathematics",
        "high_school_mathematics", "econometrics", "formal_logic"}
STEM = {"anatomy", "astronomy", "clinical_knowledge", "college_biology", "college_chemistry",
        "college_computer_science", "college_medicine", "college_physics", "computer_security",
        "conceptual_physics", "electrical_engineering", "high_school_biology", "high_school_chemistry",
        "high_school_computer_science", "high_school_physics"}
DOMAINS = ["math", "stem", "humanities"]
CLASSES = [-1, 0, 1]


def data_dir() -> Path:
    """``$TIERWISE_ROUTING_DATA``, else ``shared/data/routing`` beside the repository (as CI lays it out)."""
    env = os.environ.get("TIERWISE_ROUTING_DATA")
    return Path(env) if env else (REPO / ".." / "shared" / "data" / "routing").resolve()


DATA = data_dir()


def domain_of(subject: str) -> str:
    return "math" if subject in MATH else "stem" if subject in STEM else "humanities"


def split_of(row_id: str) -> str:
    h = int.from_bytes(hashlib.sha256(f"{SEED}:{row_id}".encode()).digest()[:4], "big")
    return "test" if h % 100 < TEST_PERCENT else "train"


def fold_of(row_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{SEED}:fold:{row_id}".encode()).digest()[:4], "big") % FOLDS


def load_rows(data_dir: Path) -> list[dict]:
    rows = []
    for name in FILES:
        with open(data_dir / name) as fh:
            for line in fh:
                r = json.loads(line)
                r["split"] = split_of(r["id"])
                r["domain"] = domain_of(r["subject"])
                r["gain"] = int(r["strong_correct"]) - int(r["weak_correct"])
                rows.append(r)
    return rows


def matrix(rows: list[dict], dim: int = DIM) -> sparse.csr_matrix:
    data, ind, ptr = [], [], [0]
    for r in rows:
        f = features(r["prompt"], dim)
        ind.extend(f.keys())
        data.extend(f.values())
        ptr.append(len(ind))
    return sparse.csr_matrix((np.array(data), np.array(ind, dtype=np.int64), np.array(ptr)), shape=(len(rows), dim))


def files_sha(data_dir: Path) -> dict[str, str]:
    return {n: hashlib.sha256((data_dir / n).read_bytes()).hexdigest()[:16] for n in FILES}


def rnd(a) -> list[float]:
    return [float(f"{v:.5g}") for v in np.asarray(a).ravel()]


# ---------------------------------------------------------------------------------------------- v1
def fit_v1(rows: list[dict], x: sparse.csr_matrix) -> LogisticRegression:
    y = np.array([0 if r["weak_correct"] else 1 for r in rows])
    return LogisticRegression(C=1.0, max_iter=2000, random_state=SEED).fit(x, y)


def fit_domain(rows: list[dict], x: sparse.csr_matrix) -> LogisticRegression:
    y = np.array([DOMAINS.index(r["domain"]) for r in rows])
    return LogisticRegression(C=C_DOM, max_iter=2000, random_state=SEED).fit(x, y)
