"""Guardrails evaluation: PII detection vs Presidio, and prompt-injection TPR at fixed FPR.

    .venv-guardrails/bin/pip install -e 'workloads/guardrails[test,train,bench]'
    .venv-guardrails/bin/python bench/guardrails.py --label cpu-2core
    .venv-guardrails/bin/python bench/guardrails.py --label cpu-2core --only injection   # injection-<label>.json

Writes bench/results/guardrails/<label>.json. Data is generated at run time (presidio-evaluator +
faker, fixed seed) or read from pinned PyPI packages; nothing large is committed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import random
import socket
import subprocess
import time
from collections import defaultdict
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core, before numpy loads
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

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
    from tierwise_guardrails.pii.ner import has_ner_candidate, packaged_model_path

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
    ours = PiiDetector(enable_ner=True)  # shipped default: numpy NER engine, no gate
    ours_spacy = PiiDetector(enable_ner=True, ner_engine="spacy")
    ours_gated = PiiDetector(enable_ner=True, ner_gate=True)
    ours_patterns = PiiDetector(enable_ner=False)
    # The previous shipped configuration (commit 00b4527): spaCy with the shared tok2vec + ner.
    ours_v1 = PiiDetector(enable_ner=True, ner_engine="spacy")
    import spacy

    ours_v1._ner._nlp = spacy.load(model, exclude=["tagger", "parser", "lemmatizer", "attribute_ruler", "senter"])

    def run(det):
        return lambda t: [(f.type, f.start, f.end) for f in det.detect(t, min_score=0.5)]

    systems = {
        "presidio": lambda t: [(r.entity_type, r.start, r.end) for r in presidio.analyze(text=t, language="en")],
        "tierwise": run(ours),
        "tierwise_ner_gated": run(ours_gated),
        "tierwise_spacy_ner_engine": run(ours_spacy),
        "tierwise_v1_spacy_tok2vec_ner": run(ours_v1),
        "tierwise_patterns_only": run(ours_patterns),
    }
    names = list(systems)
    for text, _ in data[:warmup]:
        for fn in systems.values():
            fn(text)
    # Interleaved: every sample goes through every system back to back, in a rotating order, so
    # each system sees the same machine load. CPU time is this thread's (time.thread_time_ns):
    # unlike wall time it does not count time spent waiting for a core on the shared host.
    wall = {k: [] for k in names}
    cpu = {k: [] for k in names}
    preds = {k: [] for k in names}
    load = [os.getloadavg()]
    for i, (text, gold) in enumerate(data):
        order = names[i % len(names):] + names[: i % len(names)]
        for name in order:
            fn = systems[name]
            w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
            pred = fn(text)
            c1, w1 = time.thread_time_ns(), time.perf_counter_ns()
            wall[name].append((w1 - w0) / 1e6)
            cpu[name].append((c1 - c0) / 1e6)
            preds[name].append([p for p in pred if p[0] in COMMON])
        if i % 250 == 249:
            load.append(os.getloadavg())
    out = {}
    for name in names:
        c_iou = [match_counts(g, p, 0.5) for (_, g), p in zip(data, preds[name])]
        c_exact = [match_counts(g, p, 1.0) for (_, g), p in zip(data, preds[name])]
        per, micro = summarise(c_iou)
        _, micro_exact = summarise(c_exact)
        row = {"per_entity_iou50": per, "micro_iou50": micro, "micro_exact": micro_exact}
        for kind, lat in (("wall", wall[name]), ("cpu", cpu[name])):
            per_kb = [ms * 1024 / max(1, len(t.encode())) for ms, (t, _) in zip(lat, data)]
            row.update({
                f"{kind}_ms_p50": pct(lat, 50), f"{kind}_ms_p90": pct(lat, 90), f"{kind}_ms_p99": pct(lat, 99),
                f"{kind}_ms_mean": round(float(np.mean(lat)), 4),
                f"{kind}_ms_per_kb_p50": pct(per_kb, 50), f"{kind}_ms_per_kb_p99": pct(per_kb, 99),
            })
        row["raw_wall_ms"] = [round(x, 4) for x in wall[name]]
        row["raw_cpu_ms"] = [round(x, 4) for x in cpu[name]]
        out[name] = row
    base = out["presidio"]
    for name in names[1:]:
        r = out[name]
        r["f1_minus_presidio"] = round(r["micro_iou50"]["f1"] - base["micro_iou50"]["f1"], 4)
        r["cpu_p50_per_kb_ratio_to_presidio"] = round(r["cpu_ms_per_kb_p50"] / base["cpu_ms_per_kb_p50"], 4)
        r["wall_p50_per_kb_ratio_to_presidio"] = round(r["wall_ms_per_kb_p50"] / base["wall_ms_per_kb_p50"], 4)
    # What the gate costs: model spans (PERSON/LOCATION) the ungated detector reports and the gated
    # one does not, and gold spans it stops finding.
    ner_types = ("PERSON", "LOCATION")
    lost_pred = sum(len({p for p in a if p[0] in ner_types} - set(b)) for a, b in zip(preds["tierwise"], preds["tierwise_ner_gated"]))
    skipped = sum(1 for t, _ in data if not has_ner_candidate(t))
    tp = lambda n: sum(out[n]["per_entity_iou50"][t]["recall"] * out[n]["per_entity_iou50"][t]["support"] for t in ner_types)
    gate = {
        "texts_skipped_by_gate": skipped,
        "ner_spans_lost_vs_ungated": lost_pred,
        "gold_person_location_found_ungated": round(tp("tierwise")),
        "gold_person_location_found_gated": round(tp("tierwise_ner_gated")),
    }
    same = sum(1 for a, b in zip(preds["tierwise"], preds["tierwise_spacy_ner_engine"]) if a == b)
    loadavg = {"samples_1_5_15min": [[round(x, 2) for x in l] for l in load],
               "mean_1min": round(float(np.mean([l[0] for l in load])), 2)}
    texts_kb = [len(t.encode()) / 1024 for t, _ in data]
    return {
        "samples": len(data), "seed": seed, "generator": "presidio_evaluator.PresidioSentenceFaker(locale=en_US, lower_case_ratio=0.05)",
        "entities_compared": COMMON, "gold_entity_counts_all_types": dict(sorted(gold_types.items())),
        "mean_text_kb": round(float(np.mean(texts_kb)), 4), "matching": "same type and IoU >= 0.5 (also exact-span micro)",
        "presidio_config": "AnalyzerEngine defaults, spaCy NLP engine with the packaged en_core_web_sm 3.8.0 (full pipeline)",
        "systems_description": {
            "tierwise": "shipped default: patterns + en_core_web_sm NER weights run by tierwise_guardrails.pii.fastner (numpy)",
            "tierwise_ner_gated": "as tierwise, NER skipped for texts with no capitalised word past a sentence start (ner_gate=True)",
            "tierwise_spacy_ner_engine": "patterns + spaCy's own ner component (tokenizer + ner only)",
            "tierwise_v1_spacy_tok2vec_ner": "previous default: spaCy tok2vec + ner components (the shared tok2vec is unused by ner)",
            "tierwise_patterns_only": "patterns and validators, no NER",
        },
        "timing": "interleaved per sample (rotating order), single thread; cpu = time.thread_time_ns, wall = perf_counter_ns",
        "loadavg": loadavg,
        "numpy_engine_same_findings_as_spacy_engine": f"{same}/{len(data)}",
        "ner_gate": gate,
        "systems": out,
    }


def injection_eval(latency_texts: int, seed: int):
    """v1 and v2 on sources neither trained on nor calibrated with (training/heldout.py), the
    hand-written look-alike set apart, and v2's latency per KB on one thread."""
    from tierwise_guardrails.injection.detector import InjectionDetector
    from tierwise_guardrails.injection.v2 import InjectionDetectorV2
    from tierwise_guardrails.training.evaluate import breakdown, score_docs, summary
    from tierwise_guardrails.training.heldout import lookalike_docs, near_duplicate_filter, test_docs, train_docs

    train = train_docs()
    test, dropped = near_duplicate_filter(test_docs(), train)
    looks = lookalike_docs()
    v1, v2 = InjectionDetector(), InjectionDetectorV2()
    th2 = v2.model.meta["thresholds"]
    systems = {
        # v1 scores every channel alike; its bastioncorpus numbers are not held out (it trained on even rows).
        "v1": (lambda d: v1.detect(d.text).score, {"escalate": 0.85, "block": 0.95}),
        "v2": (lambda d: v2.score(d.text, d.channel), {"escalate": th2["escalate"], "block": th2["block"]}),
        # ablation: v2 with every text on the user channel (what the router sent before it passed channels)
        "v2_all_user_channel": (lambda d: v2.score(d.text, "user"), {"escalate": th2["escalate"], "block": th2["block"]}),
    }
    out = {"test_docs": len(test), "dropped_near_duplicates_of_training": dropped, "lookalike_docs": len(looks),
           "v2_thresholds_from_validation": th2, "v2_card": {k: v2.model.meta[k] for k in ("embedding", "lexical", "head", "train_units")},
           "systems": {}}
    for name, (fn, th) in systems.items():
        row = {}
        for set_name, docs in (("heldout_test", test), ("lookalikes", looks)):
            sc = score_docs(docs, fn)
            r = summary(docs, sc, th)
            r["at_2pct_fpr_on_this_set"] = breakdown(docs, sc, r["threshold_at_2pct_fpr"])
            row[set_name] = r
        out["systems"][name] = row
    # Latency: ~1 KB texts cut from the held-out documents (whole words), scored on their own channel.
    rng = random.Random(seed)
    pool = [d for d in test if len(d.text.encode()) >= 200]
    texts = []
    while len(texts) < latency_texts:
        d = rng.choice(pool)
        t = d.text
        while len(t.encode()) < 1024:
            t += "\n\n" + rng.choice(pool).text
        texts.append((t.encode()[:1024].decode("utf-8", "ignore").rsplit(" ", 1)[0], d.channel))
    for t, ch in texts[:50]:
        v2.score(t, ch)
    wall, cpu = [], []
    load = [os.getloadavg()]
    for i, (t, ch) in enumerate(texts):
        w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        v2.score(t, ch)
        c1, w1 = time.thread_time_ns(), time.perf_counter_ns()
        kb = len(t.encode()) / 1024
        wall.append((w1 - w0) / 1e6 / kb)
        cpu.append((c1 - c0) / 1e6 / kb)
        if i % 500 == 499:
            load.append(os.getloadavg())
    out["v2_latency_per_kb"] = {
        "texts": len(texts), "mean_bytes": round(float(np.mean([len(t.encode()) for t, _ in texts])), 1),
        "threads": "OMP/OPENBLAS/MKL_NUM_THREADS=1, one Python thread",
        "cpu_ms_per_kb": {"p50": pct(cpu, 50), "p90": pct(cpu, 90), "p99": pct(cpu, 99)},
        "wall_ms_per_kb": {"p50": pct(wall, 50), "p90": pct(wall, 90), "p99": pct(wall, 99)},
        "target": "p50 <= 5 ms, p99 <= 20 ms per KB", "loadavg_1_5_15": [[round(x, 2) for x in l] for l in load],
    }
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", default="cpu-2core")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--only", choices=["pii", "injection"], help="run one part; injection writes injection-<label>.json")
    ap.add_argument("--latency-texts", type=int, default=2000)
    args = ap.parse_args()
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    logging.getLogger("tldextract").setLevel(logging.CRITICAL)
    t0 = time.time()
    load_start = [round(x, 2) for x in os.getloadavg()]
    if args.only == "injection":
        return injection_main(args, t0, load_start)
    pii = pii_eval(args.samples, args.seed, args.warmup)
    inj = injection_eval(args.latency_texts, args.seed) if args.only is None else None
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    result = {
        "scenario": "guardrails", "label": args.label,
        "metadata": {"git_sha": sha, "date": dt.datetime.now(dt.timezone.utc).isoformat(), "python": platform.python_version(),
                     "host": socket.gethostname(), "machine": platform.machine(), "cpus": __import__("os").cpu_count(),
                     "seed": args.seed, "warmup": args.warmup, "concurrency": 1, "wall_s": None,
                     "loadavg_start": load_start},
        "pii": pii, "injection": inj,
    }
    result["metadata"]["wall_s"] = round(time.time() - t0, 1)
    result["metadata"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    out = ROOT / "bench" / "results" / "guardrails" / f"{args.label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    s = pii["systems"]
    print(f"loadavg {pii['loadavg']}")
    print(f"{'system':<32}{'F1':>7}{'P':>7}{'R':>7}{'cpu p50':>9}{'cpu/KB':>9}{'ratio':>7}{'wall p50':>9}{'wall/KB':>9}{'ratio':>7}")
    for name, v in s.items():
        m = v["micro_iou50"]
        print(f"{name:<32}{m['f1']:>7}{m['precision']:>7}{m['recall']:>7}{v['cpu_ms_p50']:>9}{v['cpu_ms_per_kb_p50']:>9}"
              f"{v.get('cpu_p50_per_kb_ratio_to_presidio', 1.0):>7}{v['wall_ms_p50']:>9}{v['wall_ms_per_kb_p50']:>9}{v.get('wall_p50_per_kb_ratio_to_presidio', 1.0):>7}")
    print("per-entity F1 (tierwise / presidio):", {t: (s["tierwise"]["per_entity_iou50"][t]["f1"], s["presidio"]["per_entity_iou50"][t]["f1"]) for t in COMMON})
    print("gate:", pii["ner_gate"], "numpy==spacy engine:", pii["numpy_engine_same_findings_as_spacy_engine"])
    if inj:
        print_injection(inj)
    print(f"wrote {out}")


def print_injection(inj):
    for name, row in inj["systems"].items():
        for set_name, r in row.items():
            print(f"{name:<22}{set_name:<14} auc {r['roc_auc']:<7} tpr@1% {r['tpr_at_1pct_fpr']:<7} tpr@2% {r['tpr_at_2pct_fpr']:<7} "
                  f"escalate: tpr {r['at_escalate'].get('tpr')} fpr {r['at_escalate'].get('fpr')}")
    print("v2 latency per KB:", json.dumps(inj["v2_latency_per_kb"]))


def injection_main(args, t0, load_start):
    inj = injection_eval(args.latency_texts, args.seed)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    result = {"scenario": "guardrails", "label": f"injection-{args.label}",
              "metadata": {"git_sha": sha, "date": dt.datetime.now(dt.timezone.utc).isoformat(), "python": platform.python_version(),
                           "host": socket.gethostname(), "cpus": os.cpu_count(), "seed": args.seed,
                           "loadavg_start": load_start, "loadavg_end": [round(x, 2) for x in os.getloadavg()],
                           "wall_s": round(time.time() - t0, 1)},
              "injection": inj}
    out = ROOT / "bench" / "results" / "guardrails" / f"injection-{args.label}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print_injection(inj)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
