"""Train the triage models reproducibly (fixed seed) from ../shared/data/routing (RouteLLM strong/weak
correctness labels, GSM8K + MMLU part 1; see its README).

    .venv-router/bin/python workloads/router/train_triage.py            # from the repo root: v1 and v2

Split: a stable hash of each row id puts ~30% of rows in a held-out test split that training never
sees (bench/routing.py evaluates on it, and on leave-one-subject-group-out and cross-benchmark
splits with the recipes below refitted per fold; contaminated rows are dropped from every test set,
as upstream does).

- v1 (``triage_model.json``, ``triage.py``): hashed bag of words, label ``not weak_correct``.
- v2 (``triage_v2.json``, ``triage_v2.py``): two views of the prompt (lexical, MiniLM embedding)
  each predicting the gain g = strong_correct − weak_correct, stacked on 5-fold out-of-fold
  predictions by a logistic regression against (1 + g) / 2, so r(q) is a calibrated
  P(strong beats weak, ties half). Score quantiles for the Tier-2 share threshold come from the
  out-of-fold scores (in-sample scores of a fitted model are over-confident).
- domain head (both): coarse subject group (math / stem / humanities), mapped to adapters by config.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from tierwise_router.triage import features  # noqa: E402

REPO = HERE.parent.parent
FILES = ("gsm8k.jsonl", "mmlu_part1.jsonl")
DIM = 1 << 13
SEED = 20240810
TEST_PERCENT = 30
FOLDS = 5
C_LEX, C_EMB, C_DOM = 1.0, 1.0, 4.0
MAX_TOKENS = 40  # word pieces: p99 decision 12.2 ms on a quiet core at 64 (bench), over the 10 ms target
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


def train(data_dir: Path) -> dict:
    """The v1 artifact (unchanged recipe)."""
    rows = [r for r in load_rows(data_dir) if r["split"] == "train"]
    x = matrix(rows)
    hard, dom = fit_v1(rows, x), fit_domain(rows, x)
    quantiles = np.percentile(hard.predict_proba(x)[:, 1], np.arange(101)).tolist()
    return {
        "version": hashlib.sha256(json.dumps([files_sha(data_dir), DIM, SEED, 1.0, C_DOM]).encode()).hexdigest()[:12],
        "dim": DIM,
        "seed": SEED,
        "trained_on": {"files": files_sha(data_dir), "rows": len(rows), "split": f"sha256(seed:id) % 100 >= {TEST_PERCENT}"},
        "hard": {"label": "not weak_correct", "bias": float(hard.intercept_[0]), "weights": rnd(hard.coef_[0]),
                 "score_quantiles": [float(f"{q:.6g}") for q in quantiles]},
        "domain": {"labels": DOMAINS, "bias": rnd(dom.intercept_), "weights": [rnd(w) for w in dom.coef_]},
    }


# ---------------------------------------------------------------------------------------------- v2
def expected_gain(p: np.ndarray, classes: list[int]) -> np.ndarray:
    return p[:, classes.index(1)] - p[:, classes.index(-1)]


def fit_gain(x, gain: np.ndarray, c: float) -> LogisticRegression:
    m = LogisticRegression(C=c, max_iter=3000, random_state=SEED).fit(x, gain)
    if list(m.classes_) != CLASSES:
        raise ValueError(f"training rows must contain all gain classes {CLASSES}, got {list(m.classes_)}")
    return m


def views(lex: LogisticRegression, emb: LogisticRegression, x: sparse.csr_matrix, e: np.ndarray) -> np.ndarray:
    return np.column_stack([expected_gain(lex.predict_proba(x), CLASSES), expected_gain(emb.predict_proba(e), CLASSES)])


def soft_fit(v: np.ndarray, gain: np.ndarray) -> LogisticRegression:
    """Logistic regression on the soft label (1 + g) / 2: a tie is half a win (rows doubled, weights ½)."""
    y_soft = (1 + gain) / 2
    vv = np.vstack([v, v])
    yy = np.concatenate([np.ones(len(v)), np.zeros(len(v))])
    ww = np.concatenate([y_soft, 1 - y_soft])
    keep = ww > 0
    return LogisticRegression(C=1e4, max_iter=1000, random_state=SEED).fit(vv[keep], yy[keep], sample_weight=ww[keep])


def fit_v2(rows: list[dict], x: sparse.csr_matrix, e: np.ndarray) -> dict:
    """Everything of the v2 model but its metadata: base views refitted on all rows, the stack fitted on
    out-of-fold views. Returns the parts as arrays (``artifact_v2`` serialises them)."""
    gain = np.array([r["gain"] for r in rows])
    folds = np.array([fold_of(r["id"]) for r in rows])
    oof = np.zeros((len(rows), 2))
    for k in range(FOLDS):
        tr, te = folds != k, folds == k
        lex, emb = fit_gain(x[tr], gain[tr], C_LEX), fit_gain(e[tr], gain[tr], C_EMB)
        oof[te] = views(lex, emb, x[te], e[te])
    stack = soft_fit(oof, gain)
    oof_scores = stack.predict_proba(oof)[:, 1]
    return {"lex": fit_gain(x, gain, C_LEX), "emb": fit_gain(e, gain, C_EMB), "stack": stack,
            "quantiles": np.percentile(oof_scores, np.arange(101))}


def scorer_v2(parts: dict) -> Callable[[sparse.csr_matrix, np.ndarray], np.ndarray]:
    def score(x: sparse.csr_matrix, e: np.ndarray) -> np.ndarray:
        return parts["stack"].predict_proba(views(parts["lex"], parts["emb"], x, e))[:, 1]
    return score


def artifact_v2(parts: dict, dom: LogisticRegression, meta: dict) -> dict:
    lex, emb, stack = parts["lex"], parts["emb"], parts["stack"]
    art = {
        "format": 2,
        "seed": SEED,
        **meta,
        "classes": CLASSES,
        "lexical": {"dim": DIM, "weights": [rnd(w) for w in lex.coef_], "bias": rnd(lex.intercept_)},
        "embedding": {"weights": [rnd(w) for w in emb.coef_], "bias": rnd(emb.intercept_)},
        "stack": {"views": ["lexical", "embedding"], "weights": rnd(stack.coef_[0]),
                  "bias": float(f"{stack.intercept_[0]:.6g}")},
        "score_quantiles": [float(f"{q:.6g}") for q in parts["quantiles"]],
        "domain": {"labels": DOMAINS, "bias": rnd(dom.intercept_), "weights": [rnd(w) for w in dom.coef_]},
    }
    art["version"] = hashlib.sha256(json.dumps(art, sort_keys=True).encode()).hexdigest()[:12]
    return art


def embed(rows: list[dict], encoder) -> np.ndarray:
    return encoder.encode_many([r["prompt"] for r in rows])


def train_v2(data_dir: Path, encoder) -> dict:
    rows = [r for r in load_rows(data_dir) if r["split"] == "train"]
    x, e = matrix(rows), embed(rows, encoder)
    meta = {"encoder": {"name": "all-MiniLM-L6-v2", "weights_sha256_16": encoder.digest, "max_tokens": encoder.max_tokens},
            "trained_on": {"files": files_sha(data_dir), "rows": len(rows), "split": f"sha256(seed:id) % 100 >= {TEST_PERCENT}",
                           "label": "gain = strong_correct - weak_correct; score = P(strong beats weak, ties half)"},
            "hyper": {"C_lex": C_LEX, "C_emb": C_EMB, "C_dom": C_DOM, "folds": FOLDS}}
    return artifact_v2(fit_v2(rows, x, e), fit_domain(rows, x), meta)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--which", choices=["v1", "v2", "both"], default="both")
    ap.add_argument("--out-dir", type=Path, default=HERE / "tierwise_router")
    args = ap.parse_args()
    outs = []
    if args.which in ("v1", "both"):
        outs.append(("triage_model.json", train(args.data.resolve())))
    if args.which in ("v2", "both"):
        from tierwise_router.triage_encoder import SentenceEncoder

        outs.append(("triage_v2.json", train_v2(args.data.resolve(), SentenceEncoder(max_tokens=MAX_TOKENS, threads=2))))
    for name, art in outs:
        out = args.out_dir / name
        out.write_text(json.dumps(art, separators=(",", ":")) + "\n")
        print(f"wrote {out} version={art['version']} rows={art['trained_on']['rows']} bytes={out.stat().st_size}")


if __name__ == "__main__":
    main()
