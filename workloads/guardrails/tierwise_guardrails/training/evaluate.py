"""Detector evaluation shared by the training script and bench/guardrails.py: TPR at fixed FPR,
ROC AUC, and TPR/FPR per source and language at a given threshold."""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Sequence

import numpy as np

from tierwise_guardrails.training.heldout import Doc, detect_lang


def roc_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Probability that a random attack outscores a random benign text (ties count half)."""
    if not len(pos) or not len(neg):
        return float("nan")
    allv = np.concatenate([pos, neg])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    sorted_v = allv[order]
    i = 0
    while i < len(allv):  # average ranks over ties
        j = i
        while j + 1 < len(allv) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def threshold_at_fpr(neg: np.ndarray, fpr: float) -> float:
    """Smallest threshold t with mean(neg >= t) <= fpr (scores >= t are flagged)."""
    s = np.sort(neg)[::-1]
    k = int(np.floor(fpr * len(s)))  # may flag at most k benign
    if k >= len(s):
        return float(s[-1])
    return float(np.nextafter(s[k], np.float64(np.inf)))


def score_docs(docs: Sequence[Doc], fn: Callable[[Doc], float]) -> np.ndarray:
    return np.array([fn(d) for d in docs], dtype=np.float64)


def summary(docs: Sequence[Doc], scores: np.ndarray, thresholds: dict[str, float] | None = None) -> dict:
    y = np.array([d.label for d in docs])
    pos, neg = scores[y == 1], scores[y == 0]
    out: dict = {"attacks": int(len(pos)), "benign": int(len(neg)), "roc_auc": round(roc_auc(pos, neg), 4)}
    for fpr in (0.01, 0.02):
        t = threshold_at_fpr(neg, fpr)
        out[f"tpr_at_{int(fpr * 100)}pct_fpr"] = round(float((pos >= t).mean()), 4) if len(pos) else None
        out[f"threshold_at_{int(fpr * 100)}pct_fpr"] = round(t, 4)
    for name, t in (thresholds or {}).items():
        out[f"at_{name}"] = breakdown(docs, scores, t)
    return out


def breakdown(docs: Sequence[Doc], scores: np.ndarray, t: float) -> dict:
    """TPR and FPR at threshold ``t``, overall and per source, language and channel."""
    def rates(idx):
        y = np.array([docs[i].label for i in idx])
        s = scores[idx]
        r = {}
        if (y == 1).any():
            r["tpr"] = round(float((s[y == 1] >= t).mean()), 4)
            r["attacks"] = int((y == 1).sum())
        if (y == 0).any():
            r["fpr"] = round(float((s[y == 0] >= t).mean()), 4)
            r["benign"] = int((y == 0).sum())
        return r

    groups: dict[str, dict[str, list[int]]] = {"source": defaultdict(list), "lang": defaultdict(list), "channel": defaultdict(list)}
    for i, d in enumerate(docs):
        src = d.source.split("/")[0] if d.source.startswith("pyrit") else d.source
        groups["source"][src].append(i)
        groups["lang"][d.lang if d.lang != "en" or d.source.startswith(("bastion", "lookalikes")) else detect_lang(d.text)].append(i)
        groups["channel"][d.channel].append(i)
    out = {"threshold": round(t, 4), **rates(np.arange(len(docs)))}
    for g, parts in groups.items():
        out[f"by_{g}"] = {k: rates(np.array(v)) for k, v in sorted(parts.items())}
    return out
