"""Train the prompt-injection classifier offline and write tierwise_guardrails/model/injection-v1.npz.

    .venv-guardrails/bin/pip install -e 'workloads/guardrails[train]'
    .venv-guardrails/bin/python workloads/guardrails/scripts/train_injection.py

Reproducible: fixed seed, pinned corpora (see tierwise_guardrails.training.corpora), deterministic
features and a deterministic solver (liblinear). Only the training split is used here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from tierwise_guardrails.injection.segment import segments
from tierwise_guardrails.training.corpora import PINNED, load_splits
from tierwise_guardrails.training.train_v2 import lex_matrix

SEED = 20240611
OUT = Path(__file__).resolve().parents[1] / "tierwise_guardrails" / "model" / "injection-v1.npz"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--C", type=float, default=8.0)
    args = ap.parse_args()

    train = load_splits()["train"]
    texts, labels = [], []
    for s in train:
        # Serving scores every segment, so train on segments too: long benign documents teach the
        # model what benign paragraphs look like. Attack segments inherit the attack label only
        # for the first segment and the whole text (a jailbreak's later paragraphs may be benign).
        texts.append(s.text)
        labels.append(s.label)
        segs = segments(s.text)
        if len(segs) > 1:
            for j, (a, b) in enumerate(segs):
                if s.label == 0 or j == 0:
                    texts.append(s.text[a:b])
                    labels.append(s.label)
    X = lex_matrix(texts)
    y = np.array(labels)
    clf = LogisticRegression(C=args.C, class_weight="balanced", solver="liblinear", max_iter=2000, random_state=SEED)
    clf.fit(X, y)
    weights = clf.coef_[0].astype(np.float32)
    meta = {
        "name": "injection-v1",
        "features": "hashed word 1-2-grams (crc32) + char 3-5-grams, sublinear tf, l2; 2^18 buckets",
        "model": f"LogisticRegression(C={args.C}, class_weight=balanced, liblinear)",
        "seed": SEED,
        "corpora": PINNED | {"debian-faq": "Debian package"},
        "train_samples": {"attack": int(y.sum()), "benign": int((1 - y).sum())},
        "train_sources": dict(Counter(s.source for s in train)),
        "train_sha256": hashlib.sha256("\n\x00".join(sorted(s.text for s in train)).encode()).hexdigest(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, weights=weights, bias=np.float32(clf.intercept_[0]), meta=np.array(json.dumps(meta, sort_keys=True)))
    (args.out.with_suffix(".json")).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    print(json.dumps(meta, indent=2, sort_keys=True))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
