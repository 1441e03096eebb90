"""RAG retrieval benchmark across corpora nobody here wrote, with defaults chosen leave-one-corpus-out.

Corpora (all from Debian documentation packages the Makefile's system rule installs):
  * ``debian-faq``   — the Debian FAQ (package ``debian-faq``), ~100 question sections;
  * ``python-faq``   — the Python FAQ (package ``python3.11-doc``), ~190 question sections;
  * ``git-sqlite-faq`` — gitfaq (``git-doc``) and the SQLite FAQ (``sqlite3-doc``), ~48 questions.
Every section whose title is a question becomes one query (the question) and one document (the
section's HTML *without* its title, ingested through the service's HTML parser and chunker).
Relevance: a query's own answer section. All documents of a corpus are one anchored collection,
ingested through the service's staging path (open → add in batches of 256 → commit → promote).

Tuning is leave-one-corpus-out: for each corpus, settings are chosen on the *other* corpora only,
in three stages — BM25 analysis (mean nDCG@10), fusion (aggregation x candidate depth x dense:BM25
RRF weight x k) and the score-level reranker (alpha x depth) — and that corpus is then evaluated
with them. Fusion and reranker are chosen by the **minimax rule**: maximise the *worst* training
corpus's ratio nDCG@10(hybrid) / max(nDCG@10(BM25), nDCG@10(dense)) (ties: the better mean ratio,
then the earlier grid point). The service defaults (``Settings``, ``FusionConfig``) are the same rule
applied to all corpora together. Latency is timed on each held-out corpus with its fold's settings.

Also measured per corpus: chunk→document folding (none / max / sum, and a document-level dense
vector = the normalised mean of the document's chunk vectors), ingest throughput on the corpus and on
~2 KB documents, and every grid point.

    .venv-rag/bin/python bench/rag.py --label cpu-2core

Writes bench/results/rag/<label>.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _meta import metadata  # noqa: E402

from rag_corpora import CORPORA, MemoEmbedder, docs_2kb, fold_docs, percentile, pick, score  # noqa: E402
from rag_cross_encoder import cross_encoder_columns  # noqa: E402
from rag_side import compare_embedders, confirm_defaults, cross_encoder_latency  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TEAM = "bench"


# ---------------------------------------------------------------------------------------------- main
def main() -> int:  # noqa: PLR0915 - one linear script, stage by stage
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--label", default="local")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=1, help="timed passes over each held-out corpus per mode")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads for a query embedding")
    ap.add_argument("--batch-threads", type=int, default=2, help="intra-op threads for ingestion batches")
    ap.add_argument("--onnx-cache", type=Path, default=None)
    ap.add_argument("--top-k", type=int, default=30, help="chunks asked for per query (folded to 10 documents)")
    ap.add_argument("--ingest-2kb-docs", type=int, default=300, help="~2 KB documents for the ingest-throughput run")
    ap.add_argument("--ingest", action="store_true", help="only measure ingest throughput on ~2 KB documents (bench/rag_ingest.py)")
    ap.add_argument("--ingest-docs", type=int, default=600, help="documents for --ingest")
    ap.add_argument("--ingest-paths", default="in_process,http", help="--ingest: in_process and/or http")
    ap.add_argument("--ingest-embedders", default="fp32,int8", help="--ingest: fp32 and/or int8 graph")
    ap.add_argument("--ingest-quality", action="store_true", help="--ingest: also fp32 vs int8 nDCG@10 per query, paired")
    ap.add_argument("--corpora", default=",".join(CORPORA))
    ap.add_argument("--cross-encoder-latency", action="store_true", help="only time hybrid + cross-encoder rerank at N=20/50")
    ap.add_argument("--ce-queries", type=int, default=25, help="timed queries per corpus and N for --cross-encoder-latency")
    ap.add_argument("--compare-embedders", action="store_true", help="only compare the fp32 and int8 MiniLM graphs")
    ap.add_argument("--confirm", action="store_true", help="only evaluate the shipped defaults on the confirmation corpus")
    ap.add_argument("--cross-encoder-models", type=Path, default=ROOT / "build" / "rag-cross-encoder",
                    help="fold models of `bench/rag_cross_encoder.py loco` (without-<corpus>/int8); absent = not measured")
    args = ap.parse_args()
    if args.confirm:
        return confirm_defaults(args)
    if args.cross_encoder_latency:
        return cross_encoder_latency(args)
    if args.compare_embedders:
        return compare_embedders(args)
    if args.ingest:
        from rag_ingest import ingest_throughput

        return ingest_throughput(args)

    import numpy as np
    from qdrant_client import QdrantClient

    from tierwise_rag.access import AccessPolicy, TeamGrant
    from tierwise_rag.documents import RawDocument
    from tierwise_rag.embedding import OnnxMiniLMEmbedder
    from tierwise_rag.engine import FusionConfig, KnowledgeBase
    from tierwise_rag.lexical import BM25Index, LexicalConfig
    from tierwise_rag.rerank import ConvexCombinationReranker
    from tierwise_rag.retrieval import lexical_text
    from tierwise_rag.settings import Settings
    from tierwise_rag.store import Store

    rng = random.Random(args.seed)
    names = args.corpora.split(",")
    SINGLE = FusionConfig(candidates=50, aggregate="none")  # noqa: N806 - the single-retriever baseline's settings
    corpora = {n: CORPORA[n]() for n in names}
    for n, (q, d) in corpora.items():
        print(f"{n}: {len(q)} queries, {len(d)} documents, {sum(len(h.encode()) for h in d.values()) / max(1, len(d)):.0f} B/doc", file=sys.stderr)
    t = time.perf_counter()
    embedder = OnnxMiniLMEmbedder(threads=args.threads, batch_threads=args.batch_threads, cache_dir=args.onnx_cache)
    load_s = time.perf_counter() - t
    store = Store(QdrantClient(":memory:"), local=True)
    policy = AccessPolicy({TEAM: TeamGrant(admin=["*"])})
    defaults = Settings()
    from tierwise_rag.chunking import ChunkingConfig

    chunking = ChunkingConfig(defaults.chunk_max_tokens, defaults.chunk_overlap_tokens)

    def staged_ingest(kb: KnowledgeBase, name: str, raws: list[RawDocument]) -> dict:
        kb.create_collection(TEAM, name, "anchored")
        t0, c0 = time.perf_counter(), time.process_time()
        st = kb.open_staging(TEAM, name)
        for i in range(0, len(raws), 256):
            bad = [r for r in kb.stage_documents(TEAM, name, st.id, raws[i : i + 256]) if r.error]
            if bad:
                raise SystemExit(f"{name}: {len(bad)} documents failed, first: {bad[0]}")
        rep = kb.commit_staging(TEAM, name, st.id, promote=True)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        nbytes = sum(len(r.content.encode() if isinstance(r.content, str) else r.content) for r in raws)
        chunks = sum(r.chunks for r in rep.results)
        return {"documents": len(raws), "chunks": chunks, "bytes_per_doc": round(nbytes / len(raws)), "seconds": round(dt, 3),
                "docs_per_s": round(len(raws) / dt, 2), "chunks_per_s": round(chunks / dt, 2),
                "process_cpu_s": round(cpu, 3), "docs_per_cpu_s": round(len(raws) / cpu, 2), "load_avg_1m": os.getloadavg()[0]}

    # ---- ingest every corpus through the staging path ------------------------------------------------
    ikb = KnowledgeBase(store, embedder, policy, chunking=chunking)
    ikb.open()
    ingest = {n: staged_ingest(ikb, n, [RawDocument(i, h, "text/html") for i, h in d.items()]) for n, (_, d) in corpora.items()}
    for n, r in ingest.items():
        print(f"ingest {n}: {r}", file=sys.stderr)

    # ~2 KB documents: Python library reference prose (rag_corpora.docs_2kb, the --ingest set).
    pieces = docs_2kb(args.ingest_2kb_docs)
    ingest["docs_2kb"] = staged_ingest(ikb, "docs-2kb", [RawDocument(f"p{i}", p, "text/plain") for i, p in enumerate(pieces)])
    print(f"ingest 2 KB docs: {ingest['docs_2kb']}", file=sys.stderr)
    ikb.drop_collection(TEAM, "docs-2kb")

    memo = MemoEmbedder(embedder)

    def run_of(kb: KnowledgeBase, name: str, mode: str, rerank: bool = False) -> dict[str, dict[str, float]]:
        qs = corpora[name][0]
        return {q: fold_docs([h.doc_id for h in kb.retrieve(TEAM, [name], qs[q], top_k=args.top_k, mode=mode, rerank=rerank).hits]) for q in qs}  # type: ignore[arg-type]

    def ndcg(run: dict, name: str) -> float:
        return score(run, sorted(corpora[name][0]))["ndcg_at_10"]

    # ---- stage 1: BM25 analysis (mean nDCG@10 per corpus, BM25 alone) ---------------------------------
    bm25_grid = []
    texts = {n: [lexical_text(p) for p in ikb._active[n].payloads] for n in names}
    rows = {n: [p["doc_id"] for p in ikb._active[n].payloads] for n in names}
    for stop in ("en_plus", "en"):
        for k1 in (0.9, 1.2, 1.5, 2.0):
            for b in (0.5, 0.75, 0.9):
                cfg = LexicalConfig(stopwords=stop, stem=True, k1=k1, b=b)
                per = {}
                for n in names:
                    index, qs = BM25Index(texts[n], cfg), corpora[n][0]
                    per[n] = ndcg({q: fold_docs([rows[n][r] for r, _ in index.top(qs[q], 50)]) for q in qs}, n)
                bm25_grid.append({**cfg.model_dump(), "ndcg": per})

    def best_lex(train: list[str]) -> LexicalConfig:
        row = max(bm25_grid, key=lambda r: round(statistics.fmean(r["ndcg"][c] for c in train), 4))
        return LexicalConfig(**{k: v for k, v in row.items() if k != "ndcg"})

    # ---- stage 2/3 grids, per lexical config (computed once per distinct choice) ----------------------
    grids: dict[str, dict] = {}

    def grids_for(lex: LexicalConfig) -> dict:
        key = json.dumps(lex.model_dump(), sort_keys=True)
        if key in grids:
            return grids[key]
        kb = KnowledgeBase(store, memo, policy, chunking=chunking, lexical=lex, reranker=ConvexCombinationReranker(0.5))  # type: ignore[arg-type]
        kb.open()
        single: dict[str, dict[str, float]] = {}
        for n in names:  # the plain retrievers (no folding before fusion, depth 50), whatever the collection was last set to
            kb.update_collection(TEAM, n, fusion=SINGLE)
            single[n] = {m: ndcg(run_of(kb, n, m), n) for m in ("bm25", "dense")}
        best_single = {n: max(v.values()) for n, v in single.items()}
        fusion_grid = []
        for aggregate in ("none", "max", "sum"):
            for depth in (20, 50):
                for wd in (1.0, 1.5, 2.0, 3.0):
                    for k in (1.0, 10.0, 60.0):
                        f = FusionConfig(bm25_weight=1.0, dense_weight=wd, rrf_k=k, candidates=depth, aggregate=aggregate)
                        per = {}
                        for n in names:
                            kb.update_collection(TEAM, n, fusion=f)
                            per[n] = ndcg(run_of(kb, n, "hybrid"), n)
                        fusion_grid.append({**f.model_dump(), "ndcg": per, "ratio": {n: round(per[n] / best_single[n], 4) for n in names}})
        grids[key] = {"kb": kb, "single": single, "best_single": best_single, "fusion_grid": fusion_grid, "rerank_grids": {}}
        print(f"grids for {lex}: single={single}", file=sys.stderr)
        return grids[key]

    def rerank_grid_for(g: dict, fusion: FusionConfig) -> list[dict]:
        fkey = json.dumps(fusion.model_dump(), sort_keys=True)
        if fkey not in g["rerank_grids"]:
            kb = g["kb"]
            out = []
            for depth in (20, 50):
                for alpha in [round(0.1 * i, 1) for i in range(11)]:
                    kb.reranker, kb.rerank_depth = ConvexCombinationReranker(alpha), depth
                    per = {}
                    for n in names:
                        kb.update_collection(TEAM, n, fusion=fusion)
                        per[n] = ndcg(run_of(kb, n, "hybrid", True), n)
                    out.append({"alpha": alpha, "rerank_depth": depth, "ndcg": per, "ratio": {n: round(per[n] / g["best_single"][n], 4) for n in names}})
            g["rerank_grids"][fkey] = out
        return g["rerank_grids"][fkey]

    def choose(train: list[str]) -> dict:
        lex = best_lex(train)
        g = grids_for(lex)
        frow = pick(g["fusion_grid"], train, "ratio")
        fusion = FusionConfig(**{k: v for k, v in frow.items() if k not in ("ndcg", "ratio")})
        rrow = pick(rerank_grid_for(g, fusion), train, "ratio")
        return {"lexical": lex, "fusion": fusion, "rerank_alpha": rrow["alpha"], "rerank_depth": rrow["rerank_depth"], "grids": g}

    # ---- leave-one-corpus-out evaluation --------------------------------------------------------------
    held_out: dict[str, dict] = {}
    for name in names:
        train = [n for n in names if n != name]
        ch = choose(train)
        g = ch["grids"]
        kb = KnowledgeBase(store, embedder, policy, chunking=chunking, lexical=ch["lexical"],
                           reranker=ConvexCombinationReranker(ch["rerank_alpha"]), rerank_depth=ch["rerank_depth"])
        kb.open()
        qs = corpora[name][0]
        qids = sorted(qs)
        modes = {"bm25": ("bm25", False, SINGLE), "dense": ("dense", False, SINGLE),
                 "hybrid_rrf_1to1_k60": ("hybrid", False, FusionConfig(dense_weight=1.0, rrf_k=60.0, candidates=50, aggregate="none")), "hybrid": ("hybrid", False, ch["fusion"]),
                 "hybrid_rerank": ("hybrid", True, ch["fusion"])}
        res: dict[str, dict] = {}
        for label, (mode, rerank, fusion) in modes.items():
            kb.update_collection(TEAM, name, fusion=fusion)
            for q in rng.sample(qids, min(args.warmup, len(qids))):
                kb.retrieve(TEAM, [name], qs[q], top_k=args.top_k, mode=mode, rerank=rerank)  # type: ignore[arg-type]
            run: dict[str, dict[str, float]] = {}
            lat: list[float] = []
            stages: dict[str, list[float]] = {}
            for rep in range(args.repeat):
                order = qids[:]
                rng.shuffle(order)
                for q in order:
                    t0 = time.perf_counter()
                    r = kb.retrieve(TEAM, [name], qs[q], top_k=args.top_k, mode=mode, rerank=rerank)  # type: ignore[arg-type]
                    lat.append((time.perf_counter() - t0) * 1000)
                    for st, ms in r.timings_ms.items():
                        stages.setdefault(st, []).append(ms)
                    if rep == 0:
                        run[q] = fold_docs([h.doc_id for h in r.hits])
            res[label] = {**score(run, qids), "latency_p50_ms": round(percentile(lat, 0.5), 2), "latency_p99_ms": round(percentile(lat, 0.99), 2),
                          "stage_p50_ms": {k: round(percentile(v, 0.5), 3) for k, v in stages.items()}, "queries_timed": len(lat)}
        best_single = max(res["bm25"]["ndcg_at_10"], res["dense"]["ndcg_at_10"])
        # Folding: the same fold's fusion with each aggregation, and dense over a document-level vector.
        folding = {}
        for agg in ("none", "max", "sum"):
            kb.update_collection(TEAM, name, fusion=ch["fusion"].model_copy(update={"aggregate": agg}))
            folding[f"hybrid_aggregate_{agg}"] = ndcg(run_of(kb, name, "hybrid"), name)
        snap = kb._active[name]
        vecs = store.vectors(snap.physical, list(snap.point_ids))
        doc_vec: dict[str, np.ndarray] = {}
        for pid, p in zip(snap.point_ids, snap.payloads, strict=True):
            doc_vec.setdefault(p["doc_id"], np.zeros(embedder.dim, dtype=np.float32))
            doc_vec[p["doc_id"]] += vecs[pid]
        dids = sorted(doc_vec)
        mat = np.stack([doc_vec[d] / np.linalg.norm(doc_vec[d]) for d in dids])
        qv = embedder.embed([qs[q] for q in qids], batch_size=8)
        folding["dense_chunks_max"] = res["dense"]["ndcg_at_10"]
        doc_run = {}
        for i, q in enumerate(qids):
            sims = mat @ qv[i]
            top = np.argsort(-sims)[:10]
            doc_run[q] = {dids[j]: float(sims[j]) for j in top}
        folding["dense_document_mean_vector"] = ndcg(doc_run, name)
        held_out[name] = {
            "queries": len(qids), "chosen_on": [n for n in names if n != name],
            "chosen": {"lexical": ch["lexical"].model_dump(), "fusion": ch["fusion"].model_dump(), "rerank_alpha": ch["rerank_alpha"], "rerank_depth": ch["rerank_depth"]},
            "modes": res, "hybrid_over_best_single": round(res["hybrid"]["ndcg_at_10"] / best_single, 4),
            "hybrid_rerank_over_best_single": round(res["hybrid_rerank"]["ndcg_at_10"] / best_single, 4),
            "hybrid_rrf_1to1_k60_over_best_single": round(res["hybrid_rrf_1to1_k60"]["ndcg_at_10"] / best_single, 4),
            "folding_ndcg_at_10": folding,
            "cross_encoder": cross_encoder_columns(kb, name, qs, ch["fusion"], args.cross_encoder_models / f"without-{name}" / "int8", args.threads),
        }
        print(f"held-out {name}: " + " ".join(f"{k}={v['ndcg_at_10']:.4f}/{v['latency_p50_ms']:.1f}ms" for k, v in res.items())
              + f" ratio={held_out[name]['hybrid_over_best_single']} folding={folding}", file=sys.stderr)

    # ---- the service defaults: the same rule on every corpus ------------------------------------------
    final = choose(names)
    g = final["grids"]
    config = {"embedder": embedder.name, "chunking": {"max_tokens": chunking.max_tokens, "overlap_tokens": chunking.overlap_tokens},
              "top_k_chunks": args.top_k, "threads": args.threads, "batch_threads": args.batch_threads, "store": "qdrant-local :memory:"}
    out = {
        "scenario": "rag", "metadata": {**metadata(args.label, **config), "seed": args.seed, "repeat": args.repeat, "concurrency": 1,
                                        "load_avg_at_end": os.getloadavg(), "config_hash": hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]},
        "corpora": {n: {"queries": len(q), "documents": len(d)} for n, (q, d) in corpora.items()},
        "selection_rule": "fusion and reranker: maximise the worst training corpus's nDCG@10(hybrid)/best-single ratio (ties: mean ratio); BM25: mean nDCG@10",
        "held_out": held_out,
        "defaults_all_corpora": {"lexical": final["lexical"].model_dump(), "fusion": final["fusion"].model_dump(),
                                 "rerank_alpha": final["rerank_alpha"], "rerank_depth": final["rerank_depth"]},
        "ingest": ingest, "model_load_s": round(load_s, 3),
        "cross_encoder": "per held-out corpus (held_out.<corpus>.cross_encoder): a model trained here on the other corpora only "
                         "(bench/rag_cross_encoder.py; no package reachable here ships cross-encoder weights)",
        "grids": {"bm25": bm25_grid, **{k: {"single": v["single"], "fusion": v["fusion_grid"], "rerank": v["rerank_grids"]} for k, v in grids.items()}},
    }
    path = ROOT / "bench" / "results" / "rag" / f"{args.label}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(f"defaults (all corpora): {out['defaults_all_corpora']}; wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
