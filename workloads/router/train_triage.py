"""Train the triage models reproducibly (fixed seed) from ../shared/data/routing (RouteLLM strong/weak
correctness labels, GSM8K + MMLU part 1; see its README).

    .venv-router/bin/python workloads/router/train_triage.py            # from the repo root: v1 and v2

Split: a stable hash of each row id puts ~30% of rows in a held-out test split that training never
sees (bench/routing.py evaluates on it, and on leave-one-subject-group-out and cross-benchmark
splits with the recipes below refitted per fold; contaminated rows are dropped from every test set,
as upstream does).

- v1 (``triage_model.json``, ``triage.py``): hashed bag of words, label ``not weak_correct``.
- v2 (``triage_v2.json``, ``triage_v2.py``): a standardised blend of candidate views of the prompt
  (lexical and MiniLM-embedding heads predicting the gain g = strong_correct − weak_correct, v1's
  "weak fails", a head over prompt-format features, a kNN over training embeddings), the views,
  weights and C chosen by ``select_v2``: leave-one-subject-group-out *inside* the training split
  (mean held-out-group APGR), never on a test set. The shipped artifact restricts the choice to
  ``SHIPPED_FAMILY`` (lexical + embedding + format; see there for the rule); ``--all-families`` lifts it. A sigmoid fitted on 5-fold out-of-fold blends
  against (1 + g) / 2 makes r(q) a calibrated P(strong beats weak, ties half); the score quantiles
  for the Tier-2 share threshold come from those out-of-fold scores. bench/routing.py runs the same
  selection inside every held-out split's training rows (nested). ``fit_v2_old`` keeps the previous
  recipe (lexical + embedding, stacked on random-fold out-of-fold views) for the comparison.
- domain head (both): coarse subject group (math / stem / humanities), mapped to adapters by config.
"""


from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# The data and the recipes live beside this file; everything is re-exported here, because bench/routing.py and
# the tests load this one module and read them from it.
from triage_data import (  # noqa: E402,F401
    REPO, FILES, DIM, SEED, TEST_PERCENT, FOLDS, C_DOM, MAX_TOKENS, PRECISION, MATH, STEM, DOMAINS, CLASSES, data_dir,
    DATA, domain_of, split_of, fold_of, load_rows, matrix, files_sha, rnd, fit_v1, fit_domain,
)
from triage_recipes import (  # noqa: E402,F401
    C_GRID, BLEND_WEIGHTS, BLEND_VIEWS, KNN_K, SHIPPED_FAMILY, SUBJECT_GROUPS, GROUP_OF, group_of,
    expected_gain, fit_gain, format_matrix, soft_fit, Views, candidates, blend, inner_folds, select_v2, _tidy,
    call_performance, apgr, apgr_of_curve, fit_v2, scorer_v2, fit_v2_old,
)


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
# The recipe's hyper-parameters are chosen by leave-one-subject-group-out *inside* the training rows
# (``select_v2``): the candidate that generalises best to a subject it never saw, not the one that fits
# the training subjects best. Candidates: which views to blend and how much of each (0, ½, 1 after
# standardising each view by its training mean/sd), and the lexical/embedding heads' C.


def artifact_v2(parts: dict, dom: LogisticRegression, meta: dict) -> dict:
    """Serialise: the standardised blend and the calibration sigmoid fold into one linear stack,
    z = bias + sum_v coef_v * view_v with coef_v = a * w_v / sd_v and bias = b - sum_v coef_v * mean_v."""
    cand, v, cal = parts["cand"], parts["views"], parts["cal"]
    used = [k for k, w in cand["weights"].items() if w]
    if "knn" in used:
        raise ValueError("the selected blend uses the knn view, which the run-time triage does not implement")
    a, b = float(cal.coef_[0][0]), float(cal.intercept_[0])
    coefs, bias = [], b
    for view in used:
        key = (view, cand["C_lex"] if view == "lexical" else cand["C_emb"] if view == "embedding" else None)
        mu, sd = v.train_stats[key]
        coef = a * cand["weights"][view] / sd
        coefs.append(coef)
        bias -= coef * mu
    lex = v.models.get(("lexical", cand["C_lex"])) if "lexical" in used else None
    emb = v.models.get(("embedding", cand["C_emb"])) if "embedding" in used else None
    art = {
        "format": 2,
        "seed": SEED,
        **meta,
        "classes": CLASSES,
        "features_dim": DIM,
        "stack": {"views": used, "weights": rnd(coefs), "bias": float(f"{bias:.6g}")},
        "score_quantiles": [float(f"{q:.6g}") for q in parts["quantiles"]],
        "domain": {"labels": DOMAINS, "bias": rnd(dom.intercept_), "weights": [rnd(w) for w in dom.coef_]},
    }
    if lex is not None:
        art["lexical"] = {"dim": DIM, "weights": [rnd(w) for w in lex.coef_], "bias": rnd(lex.intercept_)}
    if emb is not None:
        art["embedding"] = {"weights": [rnd(w) for w in emb.coef_], "bias": rnd(emb.intercept_)}
    else:  # the selected recipe needs no sentence embedding: the router never loads the encoder
        art["encoder"] = None
    if "weak_fails" in used:
        m = v.models[("weak_fails", None)]
        art["weak_fails"] = {"label": "not weak_correct", "weights": rnd(m.coef_[0]), "bias": float(f"{m.intercept_[0]:.6g}")}
    if "format" in used:
        m = v.models[("format", None)]
        art["format_head"] = {"weights": [rnd(w) for w in m.coef_], "bias": rnd(m.intercept_),
                         "mean": rnd(v.fmt_mean), "sd": rnd(v.fmt_sd)}
    art["version"] = hashlib.sha256(json.dumps(art, sort_keys=True).encode()).hexdigest()[:12]
    return art


def embed(rows: list[dict], encoder) -> np.ndarray:
    return encoder.encode_many([r["prompt"] for r in rows])


def train_v2(data_dir: Path, encoder, e_all: np.ndarray | None = None, cand: dict | None = None,
             family: tuple[str, ...] | None = SHIPPED_FAMILY) -> dict:
    """Select the recipe by inner leave-one-subject-group-out on the training split (restricted to
    ``family``; None: every view combination), fit it, serialise. ``e_all``: embeddings of every row of
    ``load_rows`` (a cache), else computed here; ``cand``: a selection already made by ``select_v2`` on
    the same rows with the same family (it is deterministic)."""
    rows = load_rows(data_dir)
    tr = np.array([i for i, r in enumerate(rows) if r["split"] == "train"])
    x, fm = matrix(rows), format_matrix(rows)
    e = e_all if e_all is not None else embed(rows, encoder)
    cand = cand or select_v2(rows, x, e, fm, tr, family=family)
    parts = fit_v2(rows, x, e, fm, tr, cand)
    meta = {"encoder": {"name": "all-MiniLM-L6-v2", "weights_sha256_16": encoder.digest, "max_tokens": encoder.max_tokens,
                        "precision": encoder.precision},
            "trained_on": {"files": files_sha(data_dir), "rows": len(tr), "split": f"sha256(seed:id) % 100 >= {TEST_PERCENT}",
                           "label": "gain = strong_correct - weak_correct; score = P(strong beats weak, ties half)"},
            "selection": {"how": "leave-one-subject-group-out inside the training split, mean APGR over the held-out "
                                 "groups (strong - weak > 1 point); blend weights over standardised views",
                          **{k: cand[k] for k in ("C_lex", "C_emb", "weights", "inner_apgr", "inner_folds", "inner_top5")},
                          "family": list(family) if family else None,
                          "family_rule": "issue 15: the family most outer held-out splits chose (bench/routing.py), "
                                         "fixed before its in-domain numbers were seen" if family else None,
                          "candidates": len(candidates(family)), "grid": {"C": list(C_GRID), "weights": list(BLEND_WEIGHTS),
                                                                    "views": list(BLEND_VIEWS), "knn_k": KNN_K}},
            "hyper": {"C_dom": C_DOM, "folds": FOLDS}}
    return artifact_v2(parts, fit_domain([rows[i] for i in tr], x[tr]), meta)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--which", choices=["v1", "v2", "both"], default="both")
    ap.add_argument("--out-dir", type=Path, default=HERE / "tierwise_router")
    ap.add_argument("--all-families", action="store_true", help="select among every view combination, not only "
                    "SHIPPED_FAMILY (the committed artifact is SHIPPED_FAMILY's)")
    args = ap.parse_args()
    outs = []
    if args.which in ("v1", "both"):
        outs.append(("triage_model.json", train(args.data.resolve())))
    if args.which in ("v2", "both"):
        from tierwise_router.triage_encoder import SentenceEncoder

        family = None if args.all_families else SHIPPED_FAMILY
        encoder = SentenceEncoder(max_tokens=MAX_TOKENS, threads=2, precision=PRECISION)
        outs.append(("triage_v2.json", train_v2(args.data.resolve(), encoder,
                                                family=family)))
    for name, art in outs:
        write_artifact(args.out_dir / name, art)


def write_artifact(out: Path, art: dict) -> None:
    out.write_text(json.dumps(art, separators=(",", ":")) + "\n")
    sel = art.get("selection")
    print(f"wrote {out} version={art['version']} rows={art['trained_on']['rows']} bytes={out.stat().st_size}"
          + (f" selected C_lex={sel['C_lex']} C_emb={sel['C_emb']} weights={sel['weights']} inner APGR {sel['inner_apgr']}"
             if sel else ""))


if __name__ == "__main__":
    main()
