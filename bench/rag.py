"""RAG retrieval benchmark on the Debian FAQ (Debian package ``debian-faq``; nobody here wrote it).

Corpus: every numbered section of the FAQ's HTML chapters whose title is a question becomes one
query (the question, numbering stripped) and one document (the section's HTML *without* its title,
ingested through the service's HTML parser and chunker). Relevance: a query's own answer section.
Retrieval runs in-process through ``tierwise_rag.KnowledgeBase`` on the embedded default (Qdrant
local mode, ``:memory:``) with the real all-MiniLM-L6-v2; chunk hits are folded to documents by their
best rank. Metrics come from ranx: nDCG@10, recall@10, MRR (cut at 10 documents).

Tuning without touching the test queries: the questions are split deterministically (sorted by the
SHA-256 of their id; the first half tunes, the second half is held out). Every setting is chosen on
the tuning half only, in three stages, each by nDCG@10 (ties: the earlier grid point):
  1. BM25 analysis: stop list x stemming x k1 x b (BM25 alone);
  2. fusion: chunk->document aggregation (none/max/sum) x candidate depth x dense:BM25 RRF weight x k;
  3. the convex-combination reranker: alpha x rerank depth, on top of the chosen fusion.
Quality is then reported on the held-out half (the headline), the tuning half and the full set,
each labelled; latency is timed over all queries with the chosen settings.

    .venv-rag/bin/python bench/rag.py --label cpu-2core

Writes bench/results/rag/<label>.json with metadata, the tuning grids, metrics and raw latency samples.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import re
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

FAQ_DIR = Path("/usr/share/doc/debian/FAQ")
ROOT = Path(__file__).resolve().parent.parent
TEAM = "bench"


def load_faq(faq_dir: Path = FAQ_DIR) -> tuple[dict[str, str], dict[str, str]]:
    """Returns (queries by id, answer-section HTML by the same id)."""
    from selectolax.lexbor import LexborHTMLParser

    queries: dict[str, str] = {}
    docs: dict[str, str] = {}
    for path in sorted(faq_dir.glob("*.en.html")):
        if path.name == "index.en.html":
            continue
        tree = LexborHTMLParser(path.read_text(encoding="utf-8"))
        for h2 in tree.css("h2.title"):
            title = " ".join(h2.text().split())
            m = re.match(r"^(\d+\.\d+)\.\s+(.*)$", title)
            if not m or not m.group(2).endswith("?"):
                continue
            section = h2
            while section is not None and not (section.tag == "div" and "section" in (section.attributes.get("class") or "").split()):
                section = section.parent
            if section is None:
                continue
            anchor = h2.css_first("a[id]")
            sid = f"{path.name.split('.')[0]}#{anchor.attributes['id'] if anchor else m.group(1)}"
            html = section.html or ""
            titlepage = section.css_first("div.titlepage")
            if titlepage is not None and titlepage.html:
                html = html.replace(titlepage.html, "", 1)  # the question text is removed from its answer
            queries[sid] = m.group(2)
            docs[sid] = html
    return queries, docs


def percentile(samples: list[float], q: float) -> float:
    s = sorted(samples)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def git_sha() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def split_queries(qids: list[str]) -> tuple[list[str], list[str]]:
    """Deterministic half split, independent of file order and seed: sort by SHA-256 of the id."""
    order = sorted(qids, key=lambda q: hashlib.sha256(q.encode()).hexdigest())
    half = len(order) // 2
    return sorted(order[:half]), sorted(order[half:])


def fold_docs(doc_ids: list[str], n: int = 10) -> dict[str, float]:
    """Chunk hits (best first) -> the first ``n`` distinct documents, scored by rank."""
    ranked: dict[str, float] = {}
    for d in doc_ids:
        if d not in ranked:
            ranked[d] = float(100 - len(ranked))
            if len(ranked) == n:
                break
    return ranked or {"__none__": 0.0}


def score(run: dict[str, dict[str, float]], qids: list[str]) -> dict[str, float]:
    from ranx import Qrels, Run, evaluate

    qrels = Qrels({q: {q: 1} for q in qids})
    m = evaluate(qrels, Run({q: run[q] for q in qids}), ["ndcg@10", "recall@10", "mrr@10"])
    return {"ndcg_at_10": round(float(m["ndcg@10"]), 4), "recall_at_10": round(float(m["recall@10"]), 4), "mrr_at_10": round(float(m["mrr@10"]), 4)}


class MemoEmbedder:
    """Tuning only: remembers query vectors so a grid does not re-embed the same 50 questions
    (it changes speed, not results). Timed runs use the real embedder."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.name, self.dim, self._memo = inner, inner.name, inner.dim, {}

    def embed(self, texts: list[str], *, batch_size: int = 32):  # type: ignore[no-untyped-def]
        import numpy as np

        if len(texts) != 1:
            return self.inner.embed(texts, batch_size=batch_size)
        if texts[0] not in self._memo:
            self._memo[texts[0]] = self.inner.embed(texts)
        return np.array(self._memo[texts[0]])

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--label", default="local")
    ap.add_argument("--seed", type=int, default=7, help="order of timed queries and warmup sample")
    ap.add_argument("--repeat", type=int, default=3, help="timed passes over all queries per mode")
    ap.add_argument("--warmup", type=int, default=20, help="untimed queries per mode first")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads (query embedding)")
    ap.add_argument("--backend", choices=["onnx", "torch"], default="onnx", help="query/chunk embedding runtime")
    ap.add_argument("--onnx-cache", type=Path, default=None, help="ONNX export cache dir (default: ~/.cache/tierwise-rag/onnx)")
    ap.add_argument("--max-tokens", type=int, default=200)
    ap.add_argument("--overlap-tokens", type=int, default=32)
    ap.add_argument("--top-k", type=int, default=30, help="chunks asked for per query (folded to 10 documents)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    from qdrant_client import QdrantClient

    from tierwise_rag.access import AccessPolicy, TeamGrant
    from tierwise_rag.chunking import ChunkingConfig
    from tierwise_rag.documents import RawDocument
    from tierwise_rag.embedding import MiniLMEmbedder, OnnxMiniLMEmbedder
    from tierwise_rag.engine import FusionConfig, KnowledgeBase, _lexical_text
    from tierwise_rag.lexical import BM25Index, LexicalConfig
    from tierwise_rag.rerank import ConvexCombinationReranker
    from tierwise_rag.store import Store

    rng = random.Random(args.seed)
    queries, docs = load_faq()
    qids = sorted(queries)
    tune, held = split_queries(qids)
    t = time.perf_counter()
    embedder = MiniLMEmbedder(threads=args.threads) if args.backend == "torch" else OnnxMiniLMEmbedder(threads=args.threads, cache_dir=args.onnx_cache)
    load_s = time.perf_counter() - t

    store = Store(QdrantClient(":memory:"), local=True)
    policy = AccessPolicy({TEAM: TeamGrant(admin=["*"])})
    chunking = ChunkingConfig(args.max_tokens, args.overlap_tokens)
    kb = KnowledgeBase(store, embedder, policy, chunking=chunking, lexical=LexicalConfig(stopwords="en"))
    kb.open()
    kb.create_collection(TEAM, "debian-faq", "anchored")
    raw = [RawDocument(doc_id, html, "text/html") for doc_id, html in docs.items()]
    nbytes = sum(len(h.encode()) for h in docs.values())
    t = time.perf_counter()
    report = kb.ingest(TEAM, "debian-faq", raw, promote=True)
    ingest_s = time.perf_counter() - t
    errors = [r for r in report.results if r.status == "error"]
    chunks = sum(r.chunks for r in report.results)
    if errors:
        raise SystemExit(f"{len(errors)} documents failed to ingest, first: {errors[0]}")

    # ---- stage 1: BM25 analysis, on the tuning half, through the service's own BM25Index ------------
    snap = kb._active["debian-faq"]
    texts = [_lexical_text(p) for p in snap.payloads]
    row_doc = [p["doc_id"] for p in snap.payloads]
    bm25_grid = []
    for stop in ("en", "en_plus", "none"):
        for stem in (True, False):
            for k1 in (0.6, 0.9, 1.2, 1.5, 2.0):
                for b in (0.3, 0.5, 0.75, 0.9, 1.0):
                    cfg = LexicalConfig(stopwords=stop, stem=stem, k1=k1, b=b)
                    index = BM25Index(texts, cfg)
                    run = {q: fold_docs([row_doc[r] for r, _ in index.top(queries[q], 50)]) for q in tune}
                    bm25_grid.append({**cfg.model_dump(), "tune_ndcg_at_10": score(run, tune)["ndcg_at_10"]})
    best_lex = LexicalConfig(**{k: v for k, v in max(bm25_grid, key=lambda r: r["tune_ndcg_at_10"]).items() if k != "tune_ndcg_at_10"})
    print(f"stage 1 BM25: {best_lex}", file=sys.stderr)

    # Reopen on the same Qdrant store with the chosen analysis (the restart path: BM25 is rebuilt from Qdrant).
    memo = MemoEmbedder(embedder)
    tkb = KnowledgeBase(store, memo, policy, chunking=chunking, lexical=best_lex, reranker=ConvexCombinationReranker(0.5))  # type: ignore[arg-type]
    tkb.open()

    def run_of(k: KnowledgeBase, ids: list[str], mode: str, rerank: bool = False) -> dict[str, dict[str, float]]:
        return {q: fold_docs([h.doc_id for h in k.retrieve(TEAM, ["debian-faq"], queries[q], top_k=args.top_k, mode=mode, rerank=rerank).hits]) for q in ids}  # type: ignore[arg-type]

    # ---- stage 2: fusion ---------------------------------------------------------------------------
    fusion_grid = []
    for aggregate in ("none", "max", "sum"):
        for depth in (10, 20, 50):
            for wd in (1.0, 1.5, 2.0, 3.0, 4.0):
                for k in (1.0, 5.0, 10.0, 20.0, 60.0):
                    f = FusionConfig(bm25_weight=1.0, dense_weight=wd, rrf_k=k, candidates=depth, aggregate=aggregate)
                    tkb.update_collection(TEAM, "debian-faq", fusion=f)
                    fusion_grid.append({**f.model_dump(), "tune_ndcg_at_10": score(run_of(tkb, tune, "hybrid"), tune)["ndcg_at_10"]})
    best_fusion = FusionConfig(**{k: v for k, v in max(fusion_grid, key=lambda r: r["tune_ndcg_at_10"]).items() if k != "tune_ndcg_at_10"})
    tkb.update_collection(TEAM, "debian-faq", fusion=best_fusion)
    print(f"stage 2 fusion: {best_fusion}", file=sys.stderr)

    # ---- stage 3: convex-combination reranker --------------------------------------------------------
    rerank_grid = []
    for depth in (10, 20, 30, 50):
        for alpha in [round(0.1 * i, 1) for i in range(11)]:
            tkb.reranker, tkb.rerank_depth = ConvexCombinationReranker(alpha), depth
            rerank_grid.append({"alpha": alpha, "rerank_depth": depth, "tune_ndcg_at_10": score(run_of(tkb, tune, "hybrid", True), tune)["ndcg_at_10"]})
    best_rr = max(rerank_grid, key=lambda r: r["tune_ndcg_at_10"])
    print(f"stage 3 rerank: {best_rr}", file=sys.stderr)

    # ---- evaluation: chosen settings, real embedder --------------------------------------------------
    ekb = KnowledgeBase(store, embedder, policy, chunking=chunking, lexical=best_lex,
                        reranker=ConvexCombinationReranker(best_rr["alpha"]), rerank_depth=best_rr["rerank_depth"])
    ekb.open()
    default_fusion = FusionConfig()
    modes = {  # label: (mode, rerank, fusion config)
        "bm25": ("bm25", False, best_fusion),
        "dense": ("dense", False, best_fusion),
        "hybrid_untuned": ("hybrid", False, default_fusion),
        "hybrid": ("hybrid", False, best_fusion),
        "hybrid_rerank": ("hybrid", True, best_fusion),
    }
    results: dict[str, dict] = {}
    for label, (mode, rerank, fusion) in modes.items():
        ekb.update_collection(TEAM, "debian-faq", fusion=fusion)
        for qid in rng.sample(qids, min(args.warmup, len(qids))):
            ekb.retrieve(TEAM, ["debian-faq"], queries[qid], top_k=args.top_k, mode=mode, rerank=rerank)  # type: ignore[arg-type]
        run: dict[str, dict[str, float]] = {}
        lat: list[float] = []
        cpu: list[float] = []
        stages: dict[str, list[float]] = {}
        for rep in range(args.repeat):
            order = qids[:]
            rng.shuffle(order)
            for qid in order:
                c, t = time.thread_time(), time.perf_counter()
                res = ekb.retrieve(TEAM, ["debian-faq"], queries[qid], top_k=args.top_k, mode=mode, rerank=rerank)  # type: ignore[arg-type]
                lat.append((time.perf_counter() - t) * 1000)
                cpu.append((time.thread_time() - c) * 1000)
                for stage, ms in res.timings_ms.items():
                    stages.setdefault(stage, []).append(ms)
                if rep == 0:
                    run[qid] = fold_docs([h.doc_id for h in res.hits])
        results[label] = {
            "held_out": score(run, held), "tuning": score(run, tune), "full": score(run, qids),
            "latency_p50_ms": round(percentile(lat, 0.5), 3),
            "latency_p90_ms": round(percentile(lat, 0.9), 3),
            "latency_p99_ms": round(percentile(lat, 0.99), 3),
            "latency_mean_ms": round(statistics.fmean(lat), 3),
            "cpu_p50_ms": round(percentile(cpu, 0.5), 3),
            "cpu_p99_ms": round(percentile(cpu, 0.99), 3),
            "stage_p50_ms": {k: round(percentile(v, 0.5), 3) for k, v in stages.items()},
            "completed": len(lat),
            "latency_samples_ms": [round(x, 3) for x in lat],
        }
        r = results[label]
        print(f"{label:15s} held nDCG@10={r['held_out']['ndcg_at_10']:.4f} full={r['full']['ndcg_at_10']:.4f} "
              f"p50={r['latency_p50_ms']:.2f}ms p99={r['latency_p99_ms']:.2f}ms cpu_p50={r['cpu_p50_ms']:.2f}ms", file=sys.stderr)

    def ratio(label: str, part: str) -> float:
        best = max(results["bm25"][part]["ndcg_at_10"], results["dense"][part]["ndcg_at_10"])
        return round(results[label][part]["ndcg_at_10"] / best, 4)

    config = {
        "chunking": {"max_tokens": args.max_tokens, "overlap_tokens": args.overlap_tokens}, "lexical": best_lex.model_dump(),
        "fusion": best_fusion.model_dump(), "fusion_untuned": default_fusion.model_dump(),
        "reranker": ekb.reranker.name if ekb.reranker else None, "rerank_depth": ekb.rerank_depth, "threads": args.threads,
        "embedder": embedder.name, "embed_backend": embedder.backend, "store": "qdrant-local :memory:", "top_k_chunks": args.top_k,
    }
    out = {
        "scenario": "rag",
        "label": args.label,
        "metadata": {
            "git_sha": git_sha(), "date": datetime.now(UTC).isoformat(timespec="seconds"), "python": platform.python_version(),
            "host": socket.gethostname(), "cpus": os.cpu_count(), "platform": platform.platform(), "seed": args.seed,
            "repeat": args.repeat, "warmup": args.warmup, "concurrency": 1, "load_avg_at_end": os.getloadavg(),
            "config_hash": hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12], "config": config,
            "corpus": {"source": "debian-faq HTML (/usr/share/doc/debian/FAQ)", "queries": len(queries), "documents": len(docs),
                       "chunks": chunks, "bytes": nbytes},
            "split": {"method": "sha256(query id) order; first half tunes", "tuning_queries": len(tune), "held_out_queries": len(held),
                      "held_out_ids": held},
        },
        "tuning": {"selection": "max nDCG@10 on the tuning half; ties keep the earlier grid point",
                   "bm25_grid": bm25_grid, "fusion_grid": fusion_grid, "rerank_grid": rerank_grid},
        "metrics": {
            "model_load_s": round(load_s, 3),
            "ingest_seconds": round(ingest_s, 3),
            "ingest_docs_per_s": round(len(docs) / ingest_s, 2),
            "ingest_chunks_per_s": round(chunks / ingest_s, 2),
            "ingest_kib_per_s": round(nbytes / 1024 / ingest_s, 2),
            "held_out_hybrid_over_best_single_ndcg_ratio": ratio("hybrid", "held_out"),
            "held_out_hybrid_rerank_over_best_single_ndcg_ratio": ratio("hybrid_rerank", "held_out"),
            "held_out_hybrid_untuned_over_best_single_ndcg_ratio": ratio("hybrid_untuned", "held_out"),
            "full_hybrid_over_best_single_ndcg_ratio": ratio("hybrid", "full"),
            "full_hybrid_rerank_over_best_single_ndcg_ratio": ratio("hybrid_rerank", "full"),
            "modes": results,
        },
    }
    path = args.out or ROOT / "bench" / "results" / "rag" / f"{args.label}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"ingest: {len(docs)} docs / {chunks} chunks in {ingest_s:.2f}s; held-out ratio hybrid/best single = "
          f"{out['metrics']['held_out_hybrid_over_best_single_ndcg_ratio']}, +rerank = "
          f"{out['metrics']['held_out_hybrid_rerank_over_best_single_ndcg_ratio']}; wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
