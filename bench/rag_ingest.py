"""Ingest throughput of the RAG service on ~2 KB documents (issue 18: target >= 50 documents/s on 2 cores),
and the fp32-vs-int8 embedder quality check that decides which graph is the default.

Documents: ``rag_corpora.docs_2kb`` — real prose from the Python library reference (``python3.11-doc``),
cut into plain-text documents of <= 2,000 bytes (mean ~1.86 KB), the same set every run.

Two paths, each per embedder graph (fp32, int8), each after a warm-up ingest:
  * **in-process**: ``KnowledgeBase`` staging (open -> add 256 documents per call -> commit + promote),
    with a per-stage breakdown (validate+parse+chunk+count, embed, Qdrant upsert, commit = scroll + BM25
    build + register + promote) in wall and CPU seconds;
  * **HTTP**: a real ``uvicorn --factory tierwise_rag.app:create_app`` process on loopback, driven the way a
    user would (POST staging, POST 256 documents per request, POST commit with promote); the server's CPU is
    read from ``/proc/<pid>/stat`` (all its threads), the client's separately.
Reported: documents/s (wall), CPU seconds per document and documents per CPU-second (the number that
stays comparable when other jobs share the machine), with the load average before and after.

Quality (``--ingest-quality``): dense and hybrid (shipped defaults) nDCG@10 per query on the three FAQ
corpora for both graphs, the paired difference int8 - fp32 with a bootstrap 95 % interval (10,000
resamples, fixed seed) and the count of queries that moved each way.

    .venv-rag/bin/python bench/rag.py --ingest --label cpu-2core   # -> bench/results/rag/<label>-ingest.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _meta import metadata
from rag_corpora import CORPORA, docs_2kb, fold_docs

ROOT = Path(__file__).resolve().parent.parent
TEAM = "bench"
API_KEY = "bench-ingest-key-0123456789"
PER_REQUEST = 256


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class _Clock:
    """Wall and process-CPU seconds spent inside wrapped calls, by stage."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*a: Any, **kw: Any) -> Any:
            t, c = time.perf_counter(), time.process_time()
            try:
                return fn(*a, **kw)
            finally:
                self.wall[stage] = self.wall.get(stage, 0.0) + time.perf_counter() - t
                self.cpu[stage] = self.cpu.get(stage, 0.0) + time.process_time() - c

        return timed


def _rates(n_docs: int, n_chunks: int, wall: float, cpu: float) -> dict[str, float]:
    return {"seconds": round(wall, 3), "docs_per_s": round(n_docs / wall, 2), "chunks_per_s": round(n_chunks / wall, 2),
            "cpu_s": round(cpu, 3), "cpu_ms_per_doc": round(1000 * cpu / n_docs, 2), "cpu_ms_per_chunk": round(1000 * cpu / n_chunks, 2),
            "docs_per_cpu_s": round(n_docs / cpu, 2),
            # 2 cores: what the CPU cost per document allows when both cores are this job's
            "docs_per_s_if_2_idle_cores": round(2 * n_docs / cpu, 1)}


def in_process(texts: list[str], quantized: bool, args: argparse.Namespace) -> dict[str, Any]:
    from qdrant_client import QdrantClient

    from tierwise_rag.access import AccessPolicy, TeamGrant
    from tierwise_rag.chunking import ChunkingConfig
    from tierwise_rag.documents import RawDocument
    from tierwise_rag.embedding import OnnxMiniLMEmbedder
    from tierwise_rag.engine import KnowledgeBase
    from tierwise_rag.settings import Settings
    from tierwise_rag.store import Store

    d = Settings()
    emb = OnnxMiniLMEmbedder(threads=d.embed_threads, batch_threads=args.batch_threads, cache_dir=args.onnx_cache, quantized=quantized)
    kb = KnowledgeBase(Store(QdrantClient(":memory:"), local=True), emb, AccessPolicy({TEAM: TeamGrant(admin=["*"])}),
                       chunking=ChunkingConfig(d.chunk_max_tokens, d.chunk_overlap_tokens))
    kb.open()
    raws = [RawDocument(f"d{i:05d}", t, "text/plain") for i, t in enumerate(texts)]
    kb.create_collection(TEAM, "warm", "anchored")
    kb.ingest(TEAM, "warm", [RawDocument(f"w{i}", t, "text/plain") for i, t in enumerate(texts[-16:])])  # warm both ONNX sessions
    clock = _Clock()
    kb._prepare_batch = clock.wrap("validate_parse_chunk", kb._prepare_batch)  # type: ignore[method-assign]
    emb_embed = emb.embed
    emb.embed = clock.wrap("embed", emb_embed)  # type: ignore[method-assign]
    kb.store.upsert = clock.wrap("qdrant_upsert", kb.store.upsert)  # type: ignore[method-assign]
    kb.commit_staging = clock.wrap("commit_bm25_register_promote", kb.commit_staging)  # type: ignore[method-assign]
    kb.create_collection(TEAM, "docs", "anchored")
    load0 = _load()
    t0, c0 = time.perf_counter(), time.process_time()
    st = kb.open_staging(TEAM, "docs")
    for i in range(0, len(raws), PER_REQUEST):
        bad = [r for r in kb.stage_documents(TEAM, "docs", st.id, raws[i : i + PER_REQUEST]) if r.error]
        if bad:
            raise SystemExit(f"{len(bad)} documents failed, first: {bad[0]}")
    rep = kb.commit_staging(TEAM, "docs", st.id, promote=True)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    chunks = sum(r.chunks for r in rep.results)
    items = kb.store.scroll_all(kb._version_physical("docs", rep.version))
    tokens = sum(emb.count_tokens(("\n\n".join([" > ".join(p["headings"]), p["text"]]) if p["headings"] else p["text"])) + 2 for _, p in items)
    stages = {k: {"wall_s": round(clock.wall[k], 3), "cpu_s": round(clock.cpu[k], 3), "cpu_share": round(clock.cpu[k] / cpu, 3)} for k in clock.wall}
    other_cpu = cpu - sum(clock.cpu.values())
    stages["other"] = {"wall_s": round(wall - sum(clock.wall.values()), 3), "cpu_s": round(other_cpu, 3), "cpu_share": round(other_cpu / cpu, 3)}
    return {"embedder": emb.name, "documents": len(raws), "chunks": chunks, "chunks_per_doc": round(chunks / len(raws), 2),
            "tokens_per_chunk": round(tokens / chunks, 1), "tokens_per_doc": round(tokens / len(raws), 1), **_rates(len(raws), chunks, wall, cpu),
            "stages": stages, "load_avg_before": load0, "load_avg_after": _load()}


def _proc_cpu_s(pid: int) -> float:
    """utime + stime of a process (all its threads) in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def _server(quantized: bool, args: argparse.Namespace) -> Iterator[tuple[str, int]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "TIERWISE_RAG_TEAMS": json.dumps({TEAM: {"api_key": API_KEY, "admin": ["*"]}}),
           "TIERWISE_RAG_EMBED_QUANTIZED": "true" if quantized else "false", "TIERWISE_RAG_EMBED_BATCH_THREADS": str(args.batch_threads)}
    if args.onnx_cache:
        env["TIERWISE_RAG_ONNX_CACHE_DIR"] = str(args.onnx_cache)
    uvicorn = Path(sys.executable).with_name("uvicorn")
    proc = subprocess.Popen([str(uvicorn), "--factory", "tierwise_rag.app:create_app", "--host", "127.0.0.1", "--port", str(port),
                             "--log-level", "warning", "--no-access-log"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import httpx

        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the RAG server did not start")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def over_http(texts: list[str], quantized: bool, args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    docs = [{"id": f"d{i:05d}", "text": t, "content_type": "text/plain"} for i, t in enumerate(texts)]
    h = {"Authorization": f"Bearer {API_KEY}"}
    with _server(quantized, args) as (url, pid), httpx.Client(base_url=url, timeout=600, headers=h) as c:
        def ok(r: httpx.Response) -> dict[str, Any]:
            if r.status_code >= 300:
                raise SystemExit(f"{r.request.method} {r.request.url}: {r.status_code} {r.text[:300]}")
            return r.json() if r.content else {}

        ok(c.post("/v1/collections", json={"name": "warm", "kind": "anchored"}))
        ok(c.post("/v1/ingest", json={"collection": "warm", "documents": [{**d, "id": f"w{i}"} for i, d in enumerate(docs[-16:])]}))
        ok(c.post("/v1/collections", json={"name": "docs", "kind": "anchored"}))
        load0 = _load()
        s0, t0, c0 = _proc_cpu_s(pid), time.perf_counter(), time.process_time()
        sid = ok(c.post("/v1/collections/docs/staging", json={}))["id"]
        per_request = []
        for i in range(0, len(docs), PER_REQUEST):
            t = time.perf_counter()
            body = ok(c.post(f"/v1/collections/docs/staging/{sid}/documents", json={"documents": docs[i : i + PER_REQUEST]}))
            per_request.append(round(time.perf_counter() - t, 3))
            if body["counts"] != {"ingested": len(docs[i : i + PER_REQUEST])}:
                raise SystemExit(f"staging request {i // PER_REQUEST}: {body['counts']}")
        t = time.perf_counter()
        done = ok(c.post(f"/v1/collections/docs/staging/{sid}/commit", json={"promote": True}))
        commit_s = time.perf_counter() - t
        wall, client_cpu, server_cpu = time.perf_counter() - t0, time.process_time() - c0, _proc_cpu_s(pid) - s0
        if not (done["promoted"] and done["counts"] == {"ingested": len(docs)}):
            raise SystemExit(f"commit: {done['counts']}")
        chunks = sum(r["chunks"] for r in done["results"])
        hit = ok(c.post("/v1/retrieve", json={"collections": ["docs"], "query": texts[0][:200], "mode": "hybrid"}))["data"][0]
    return {"documents": len(docs), "chunks": chunks, "requests": len(per_request) + 2, "documents_per_request": PER_REQUEST,
            "request_s": per_request, "commit_s": round(commit_s, 3), **_rates(len(docs), chunks, wall, server_cpu),
            "client_cpu_s": round(client_cpu, 3), "query_after_commit_top_doc": hit["doc_id"],
            "load_avg_before": load0, "load_avg_after": _load()}


def _bootstrap(diffs: list[float], seed: int, n: int = 10_000) -> tuple[float, float]:
    rng = random.Random(seed)
    k = len(diffs)
    means = sorted(sum(diffs[rng.randrange(k)] for _ in range(k)) / k for _ in range(n))
    return round(means[int(0.025 * n)], 4), round(means[int(0.975 * n) - 1], 4)


def embedder_quality(args: argparse.Namespace) -> dict[str, Any]:
    """Dense and hybrid (shipped defaults) nDCG@10 per query, fp32 vs int8, paired."""
    from ranx import Qrels, Run, evaluate

    from tierwise_rag.app import build_kb
    from tierwise_rag.documents import RawDocument
    from tierwise_rag.settings import Settings

    corpora = {n: CORPORA[n]() for n in CORPORA}
    per_query: dict[str, dict[str, dict[str, list[float]]]] = {}
    names: dict[str, str] = {}
    for label, quantized in (("fp32", False), ("int8", True)):
        s = Settings(teams={TEAM: {"api_key": API_KEY, "admin": ["*"]}}, embed_quantized=quantized, onnx_cache_dir=args.onnx_cache,
                     embed_batch_threads=args.batch_threads)
        kb = build_kb(s)
        names[label] = kb.embedder.name
        for name, (qs, docs) in corpora.items():
            kb.create_collection(TEAM, name, "anchored")
            kb.ingest(TEAM, name, [RawDocument(i, h, "text/html") for i, h in docs.items()], promote=True)
            qids = sorted(qs)
            for mode in ("dense", "hybrid"):
                run = {q: fold_docs([h.doc_id for h in kb.retrieve(TEAM, [name], qs[q], top_k=args.top_k, mode=mode).hits]) for q in qids}
                scores = evaluate(Qrels({q: {q: 1} for q in qids}), Run(run), "ndcg@10", return_mean=False)
                per_query.setdefault(name, {}).setdefault(mode, {})[label] = [round(float(x), 6) for x in scores]
        kb.store.client.close()
    out: dict[str, Any] = {"embedders": names, "corpora": {}}
    for name, modes in per_query.items():
        out["corpora"][name] = {}
        for mode, v in modes.items():
            diffs = [b - a for a, b in zip(v["fp32"], v["int8"], strict=True)]
            lo, hi = _bootstrap(diffs, args.seed)
            out["corpora"][name][mode] = {
                "queries": len(diffs), "ndcg_at_10_fp32": round(statistics.fmean(v["fp32"]), 4), "ndcg_at_10_int8": round(statistics.fmean(v["int8"]), 4),
                "diff_int8_minus_fp32": round(statistics.fmean(diffs), 4), "bootstrap_95ci": [lo, hi], "ci_contains_0": lo <= 0 <= hi,
                "queries_better": sum(d > 1e-9 for d in diffs), "queries_worse": sum(d < -1e-9 for d in diffs),
                "per_query_fp32": v["fp32"], "per_query_int8": v["int8"]}
            print(f"quality {name} {mode}: {({k: x for k, x in out['corpora'][name][mode].items() if not k.startswith('per_query')})}", file=sys.stderr)
    return out


def ingest_throughput(args: argparse.Namespace) -> int:
    texts = docs_2kb(args.ingest_docs)
    sizes = [len(t.encode()) for t in texts]
    out: dict[str, Any] = {
        "scenario": "rag-ingest",
        "metadata": {**metadata(args.label, batch_threads=args.batch_threads, documents=len(texts), per_request=PER_REQUEST, paths=args.ingest_paths,
                                embedders=args.ingest_embedders), "load_avg_at_start": _load()},
        "documents": {"source": "python3.11-doc library reference (rag_corpora.docs_2kb)", "count": len(texts),
                      "bytes_mean": round(statistics.fmean(sizes)), "bytes_min": min(sizes), "bytes_max": max(sizes),
                      "python3.11-doc": subprocess.run(["dpkg-query", "-W", "-f=${Version}", "python3.11-doc"], capture_output=True, text=True).stdout},
        "results": {},
    }
    for label in args.ingest_embedders.split(","):
        quantized = {"fp32": False, "int8": True}[label]
        res: dict[str, Any] = {}
        for path in args.ingest_paths.split(","):
            res[path] = (in_process if path == "in_process" else over_http)(texts, quantized, args)
            print(f"ingest {label} {path}: { {k: v for k, v in res[path].items() if k != 'stages'} }", file=sys.stderr)
            if "stages" in res[path]:
                print(f"  stages: {res[path]['stages']}", file=sys.stderr)
        out["results"][label] = res
    if args.ingest_quality:
        out["quality_fp32_vs_int8"] = embedder_quality(args)
    out["metadata"]["load_avg_at_end"] = _load()
    path = ROOT / "bench" / "results" / "rag" / f"{args.label}-ingest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return 0
