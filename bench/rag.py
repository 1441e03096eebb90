"""RAG retrieval benchmark on the Debian FAQ (Debian package ``debian-faq``; nobody here wrote it).

Corpus: every numbered section of the FAQ's HTML chapters whose title is a question becomes one
query (the question, numbering stripped) and one document (the section's HTML *without* its title,
ingested through the service's HTML parser and chunker). Relevance: a query's own answer section.
Retrieval runs in-process through ``tierwise_rag.KnowledgeBase`` on the embedded default (Qdrant
local mode, ``:memory:``) with the real all-MiniLM-L6-v2; chunk hits are folded to documents by their
best rank. Metrics come from ranx: nDCG@10, recall@10, MRR (cut at 10 documents).

    .venv-rag/bin/python bench/rag.py --label cpu-2core

Writes bench/results/rag/<label>.json with metadata, metrics and the raw latency samples.
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--label", default="local")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=3, help="timed passes over all queries per mode")
    ap.add_argument("--warmup", type=int, default=20, help="untimed queries per mode first")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (query embedding)")
    ap.add_argument("--max-tokens", type=int, default=200)
    ap.add_argument("--overlap-tokens", type=int, default=32)
    ap.add_argument("--bm25-weight", type=float, default=1.0)
    ap.add_argument("--dense-weight", type=float, default=1.0)
    ap.add_argument("--rrf-k", type=float, default=60.0)
    ap.add_argument("--candidates", type=int, default=50)
    ap.add_argument("--alpha", type=float, default=0.5, help="dense share in the convex-combination reranker")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    from qdrant_client import QdrantClient
    from ranx import Qrels, Run, evaluate

    from tierwise_rag.access import AccessPolicy, TeamGrant
    from tierwise_rag.chunking import ChunkingConfig
    from tierwise_rag.documents import RawDocument
    from tierwise_rag.embedding import MiniLMEmbedder
    from tierwise_rag.engine import FusionConfig, KnowledgeBase
    from tierwise_rag.rerank import ConvexCombinationReranker
    from tierwise_rag.store import Store

    random.seed(args.seed)
    queries, docs = load_faq()
    t = time.perf_counter()
    embedder = MiniLMEmbedder(threads=args.threads)
    load_s = time.perf_counter() - t

    kb = KnowledgeBase(
        Store(QdrantClient(":memory:"), local=True), embedder, AccessPolicy({TEAM: TeamGrant(admin=["*"])}),
        chunking=ChunkingConfig(args.max_tokens, args.overlap_tokens), reranker=ConvexCombinationReranker(args.alpha),
    )
    kb.open()
    fusion = FusionConfig(bm25_weight=args.bm25_weight, dense_weight=args.dense_weight, rrf_k=args.rrf_k, candidates=args.candidates)
    kb.create_collection(TEAM, "debian-faq", "anchored", fusion=fusion)
    raw = [RawDocument(doc_id, html, "text/html") for doc_id, html in docs.items()]
    nbytes = sum(len(h.encode()) for h in docs.values())
    t = time.perf_counter()
    report = kb.ingest(TEAM, "debian-faq", raw, promote=True)
    ingest_s = time.perf_counter() - t
    errors = [r for r in report.results if r.status == "error"]
    chunks = sum(r.chunks for r in report.results)
    if errors:
        raise SystemExit(f"{len(errors)} documents failed to ingest, first: {errors[0]}")

    qrels = Qrels({qid: {qid: 1} for qid in queries})
    qids = list(queries)
    modes = {"bm25": ("bm25", False), "dense": ("dense", False), "hybrid": ("hybrid", False), "hybrid_rerank": ("hybrid", True)}
    results: dict[str, dict] = {}
    for label, (mode, rerank) in modes.items():
        warm = random.sample(qids, min(args.warmup, len(qids)))
        for qid in warm:
            kb.retrieve(TEAM, ["debian-faq"], queries[qid], top_k=30, mode=mode, rerank=rerank)
        run: dict[str, dict[str, float]] = {}
        lat: list[float] = []
        stages: dict[str, list[float]] = {}
        for rep in range(args.repeat):
            order = qids[:]
            random.shuffle(order)
            for qid in order:
                t = time.perf_counter()
                res = kb.retrieve(TEAM, ["debian-faq"], queries[qid], top_k=30, mode=mode, rerank=rerank)
                lat.append((time.perf_counter() - t) * 1000)
                for stage, ms in res.timings_ms.items():
                    stages.setdefault(stage, []).append(ms)
                if rep == 0:
                    ranked: dict[str, float] = {}
                    for hit in res.hits:  # fold chunks to documents, best rank wins
                        if hit.doc_id not in ranked:
                            ranked[hit.doc_id] = float(30 - len(ranked))
                        if len(ranked) == 10:
                            break
                    run[qid] = ranked or {"__none__": 0.0}
        scores = evaluate(qrels, Run(run), ["ndcg@10", "recall@10", "mrr@10"])
        results[label] = {
            "ndcg_at_10": round(float(scores["ndcg@10"]), 4),
            "recall_at_10": round(float(scores["recall@10"]), 4),
            "mrr_at_10": round(float(scores["mrr@10"]), 4),
            "latency_p50_ms": round(percentile(lat, 0.5), 3),
            "latency_p90_ms": round(percentile(lat, 0.9), 3),
            "latency_p99_ms": round(percentile(lat, 0.99), 3),
            "latency_mean_ms": round(statistics.fmean(lat), 3),
            "stage_p50_ms": {k: round(percentile(v, 0.5), 3) for k, v in stages.items()},
            "completed": len(lat),
            "latency_samples_ms": [round(x, 3) for x in lat],
        }
        print(f"{label:14s} nDCG@10={results[label]['ndcg_at_10']:.4f} R@10={results[label]['recall_at_10']:.4f} "
              f"MRR={results[label]['mrr_at_10']:.4f} p50={results[label]['latency_p50_ms']:.2f}ms p99={results[label]['latency_p99_ms']:.2f}ms",
              file=sys.stderr)

    best_single = max(results["bm25"]["ndcg_at_10"], results["dense"]["ndcg_at_10"])
    config = {
        "chunking": {"max_tokens": args.max_tokens, "overlap_tokens": args.overlap_tokens}, "fusion": fusion.model_dump(),
        "reranker": kb.reranker.name if kb.reranker else None, "rerank_depth": kb.rerank_depth, "torch_threads": args.threads,
        "embedder": embedder.name, "store": "qdrant-local :memory:", "top_k_chunks": 30,
    }
    out = {
        "scenario": "rag",
        "label": args.label,
        "metadata": {
            "git_sha": git_sha(), "date": datetime.now(UTC).isoformat(timespec="seconds"), "python": platform.python_version(),
            "host": socket.gethostname(), "cpus": os.cpu_count(), "platform": platform.platform(), "seed": args.seed,
            "repeat": args.repeat, "warmup": args.warmup, "concurrency": 1,
            "config_hash": hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12], "config": config,
            "corpus": {"source": "debian-faq HTML (/usr/share/doc/debian/FAQ)", "queries": len(queries), "documents": len(docs),
                       "chunks": chunks, "bytes": nbytes},
        },
        "metrics": {
            "model_load_s": round(load_s, 3),
            "ingest_seconds": round(ingest_s, 3),
            "ingest_docs_per_s": round(len(docs) / ingest_s, 2),
            "ingest_chunks_per_s": round(chunks / ingest_s, 2),
            "ingest_kib_per_s": round(nbytes / 1024 / ingest_s, 2),
            "hybrid_over_best_single_ndcg_ratio": round(results["hybrid"]["ndcg_at_10"] / best_single, 4),
            "hybrid_rerank_over_best_single_ndcg_ratio": round(results["hybrid_rerank"]["ndcg_at_10"] / best_single, 4),
            "modes": results,
        },
    }
    path = args.out or ROOT / "bench" / "results" / "rag" / f"{args.label}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"ingest: {len(docs)} docs / {chunks} chunks in {ingest_s:.2f}s; ratio hybrid/best single = "
          f"{out['metrics']['hybrid_over_best_single_ndcg_ratio']}; wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
