from __future__ import annotations

import threading
import time

import pytest
from qdrant_client import QdrantClient

from tierwise_rag.access import AccessDenied
from tierwise_rag.documents import RawDocument
from tierwise_rag.engine import Conflict, InvalidRequest, NotFound


def snapshot_docs(tag: str, n: int = 6) -> list[RawDocument]:
    # Every document of version `tag` mentions the tag, so a query reveals which version answered.
    return [RawDocument(f"doc-{i}", f"Release {tag} notes, item {i}: the {tag} kernel supports widget{i}.") for i in range(n)]


def versions_seen(kb, query: str = "kernel widget notes") -> set[str]:
    res = kb.retrieve("platform", ["kb"], query, top_k=20)
    return {h.text.split()[1] for h in res.hits}


def test_anchored_ingest_is_idempotent_by_content(kb) -> None:
    kb.create_collection("platform", "kb", "anchored")
    r1 = kb.ingest("platform", "kb", snapshot_docs("alpha"))
    r2 = kb.ingest("platform", "kb", list(reversed(snapshot_docs("alpha"))))
    assert r1.created_version and not r2.created_version
    assert r1.version == r2.version
    assert {r.status for r in r2.results} == {"unchanged"}
    assert len(kb.get_collection("platform", "kb").versions) == 1


def test_promote_and_rollback_move_the_alias(kb) -> None:
    kb.create_collection("platform", "kb", "anchored")
    v1 = kb.ingest("platform", "kb", snapshot_docs("alpha"), promote=True).version
    v2 = kb.ingest("platform", "kb", snapshot_docs("beta")).version
    assert versions_seen(kb) == {"alpha"}  # staged, not yet promoted
    kb.promote("platform", "kb", v2)
    assert versions_seen(kb) == {"beta"}
    assert kb.store.aliases()["tw__kb"] == kb.store.version_collection("kb", v2)
    info = kb.rollback("platform", "kb")
    assert info.active_version == v1 and versions_seen(kb) == {"alpha"}
    assert kb.store.aliases()["tw__kb"] == kb.store.version_collection("kb", v1)
    with pytest.raises(Conflict):
        kb.rollback("platform", "kb")  # nothing earlier than v1
    with pytest.raises(Conflict):
        kb.delete_version("platform", "kb", v1)  # active
    kb.delete_version("platform", "kb", v2)
    assert [v.id for v in kb.get_collection("platform", "kb").versions] == [v1]
    with pytest.raises(NotFound):
        kb.promote("platform", "kb", v2)


def test_queries_never_see_half_a_version_during_promote(kb) -> None:
    kb.create_collection("platform", "kb", "anchored")
    va = kb.ingest("platform", "kb", snapshot_docs("alpha", 12), promote=True).version
    vb = kb.ingest("platform", "kb", snapshot_docs("beta", 12)).version
    mixed: list[set[str]] = []
    seen: set[frozenset[str]] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def query_loop() -> None:
        try:
            while not stop.is_set():
                res = kb.retrieve("platform", ["kb"], "kernel widget notes alpha beta", top_k=24)
                tags = {h.text.split()[1] for h in res.hits}
                vers = {h.version for h in res.hits}
                seen.add(frozenset(tags))
                if len(tags) != 1 or len(vers) != 1 or res.versions["kb"] not in vers:
                    mixed.append(tags)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=query_loop) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(40):  # flip back and forth while the readers run
        kb.promote("platform", "kb", vb if i % 2 == 0 else va)
        if i < 2:  # make sure the readers observe both versions, not just the one they started on
            want = frozenset({"beta" if i == 0 else "alpha"})
            deadline = time.monotonic() + 10
            while want not in seen and time.monotonic() < deadline and not errors:
                time.sleep(0.001)
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert not mixed
    # The readers really ran across the flips: each version was seen whole.
    assert seen == {frozenset({"alpha"}), frozenset({"beta"})}


def test_fluid_upsert_update_delete(kb, clock) -> None:
    kb.create_collection("platform", "news", "fluid", max_age_seconds=3600)
    long = " ".join(f"Paragraph sentence {i} about outages." for i in range(60))
    r = kb.ingest("platform", "news", [RawDocument("n1", long, source_version="v1"), RawDocument("n2", "A short note on pricing.")])
    chunks_before = r.results[0].chunks
    assert chunks_before > 2
    assert [x.status for x in kb.ingest("platform", "news", [RawDocument("n2", "A short note on pricing.", source_version="v2")]).results] == ["unchanged"]
    assert kb.documents("platform", "news")["n2"]["source_version"] == "v2"
    # shrink n1: left-over chunks must disappear from both retrievers
    clock.now += 10
    kb.ingest("platform", "news", [RawDocument("n1", "Outages are over.", source_version="v3")])
    docs = kb.documents("platform", "news")
    assert docs["n1"]["chunks"] == 1 and docs["n1"]["source_version"] == "v3"
    hits = kb.retrieve("platform", ["news"], "paragraph sentence outages", top_k=20).hits
    assert [h.text for h in hits if h.doc_id == "n1"] == ["Outages are over."]
    assert all(h.ingested_at == clock.now for h in hits if h.doc_id == "n1")
    dense_only = kb.retrieve("platform", ["news"], "paragraph sentence outages", top_k=20, mode="dense").hits
    assert sum(1 for h in dense_only if h.doc_id == "n1") == 1
    res = kb.delete_documents("platform", "news", ["n1", "missing"])
    assert [r.status for r in res] == ["deleted", "not_found"]
    assert {h.doc_id for h in kb.retrieve("platform", ["news"], "outages pricing", top_k=20).hits} == {"n2"}


def test_staleness_reporting(kb, clock) -> None:
    kb.create_collection("platform", "news", "fluid", max_age_seconds=100)
    kb.ingest("platform", "news", [RawDocument("old", "old news about apples")])
    clock.now += 150
    kb.ingest("platform", "news", [RawDocument("new", "fresh news about apples")])
    rep = kb.staleness("platform", "news")
    assert (rep.documents, rep.stale_documents, rep.stale_examples, rep.oldest_age_seconds) == (2, 1, ["old"], 150)
    hits = {h.doc_id: h.stale for h in kb.retrieve("platform", ["news"], "news about apples").hits}
    assert hits == {"old": True, "new": False}


def test_s3_sequencer_ordering(kb) -> None:
    kb.create_collection("platform", "news", "fluid")
    kb.ingest("platform", "news", [RawDocument("k", "version two")], sequencers=["0055AED6DCD90281E6"])
    late = kb.ingest("platform", "news", [RawDocument("k", "version one")], sequencers=["0055AED6DCD90281E5"])
    assert late.results[0].status == "skipped_stale_event"
    assert kb.retrieve("platform", ["news"], "version").hits[0].text == "version two"
    assert kb.delete_documents("platform", "news", ["k"], sequencers=["0055AED6DCD90281E5"])[0].status == "skipped_stale_event"
    assert kb.delete_documents("platform", "news", ["k"], sequencers=["0055AED6DCD90281E7"])[0].status == "deleted"


def test_bad_documents_do_not_sink_the_batch(kb) -> None:
    kb.create_collection("platform", "news", "fluid")
    kb.max_document_bytes = 1000
    batch = [
        RawDocument("good-1", "Debian uses dpkg."), RawDocument("empty", "  "), RawDocument("huge", "word " * 1000),
        RawDocument("binary", b"\x7fELF\x02\x01\x01\x00\x00"), RawDocument("latin", "naïve".encode("latin-1")),
        RawDocument("good-2", "<p>apt resolves dependencies</p>", "text/html"), RawDocument("good-1", "duplicate id"),
        RawDocument("markup-only", "<div><script>x()</script></div>", "text/html"),
    ]
    rep = kb.ingest("platform", "news", batch)
    status = [(r.id, r.status, (r.error or {}).get("code")) for r in rep.results]
    assert status == [
        ("good-1", "ingested", None), ("empty", "error", "empty_document"), ("huge", "error", "document_too_large"),
        ("binary", "error", "binary_content"), ("latin", "error", "invalid_encoding"), ("good-2", "ingested", None),
        ("good-1", "error", "duplicate_document_id"), ("markup-only", "error", "empty_document"),
    ]
    assert set(kb.documents("platform", "news")) == {"good-1", "good-2"}


def test_access_control_in_the_library(kb) -> None:
    kb.create_collection("platform", "support-kb", "anchored")
    kb.create_collection("platform", "billing-kb", "anchored")
    kb.create_collection("platform", "support-news", "fluid")
    kb.ingest("platform", "support-kb", [RawDocument("s", "reset your password here")], promote=True)
    kb.ingest("platform", "billing-kb", [RawDocument("b", "invoice password policy")], promote=True)
    assert [h.doc_id for h in kb.retrieve("support", ["support-kb"], "password").hits] == ["s"]
    with pytest.raises(AccessDenied):
        kb.retrieve("support", ["support-kb", "billing-kb"], "password")  # one forbidden → the whole query
    with pytest.raises(AccessDenied):
        kb.retrieve("nobody", ["support-kb"], "password")
    with pytest.raises(AccessDenied):
        kb.ingest("support", "support-kb", [RawDocument("x", "y")])  # read-only there
    kb.ingest("support", "support-news", [RawDocument("x", "status update")])  # write grant
    with pytest.raises(AccessDenied):
        kb.promote("support", "support-kb", "whatever")
    with pytest.raises(AccessDenied):
        kb.create_collection("billing", "billing-new", "fluid")
    assert [c.name for c in kb.list_collections("billing")] == ["billing-kb"]
    with pytest.raises(AccessDenied):
        kb.retrieve("billing", ["billing-missing-x", "support-kb"], "x")  # denial wins over not-found


def test_filters_apply_to_both_retrievers(kb) -> None:
    kb.create_collection("platform", "news", "fluid")
    kb.ingest("platform", "news", [
        RawDocument("a", "gpu quota raised", metadata={"region": "eu", "tags": ["gpu", "quota"]}),
        RawDocument("b", "gpu quota lowered", metadata={"region": "us", "tags": ["gpu"]}),
    ])
    for mode in ("bm25", "dense", "hybrid"):
        assert {h.doc_id for h in kb.retrieve("platform", ["news"], "gpu quota", mode=mode, filters={"region": "eu"}).hits} == {"a"}
        assert {h.doc_id for h in kb.retrieve("platform", ["news"], "gpu quota", mode=mode, filters={"tags": "quota"}).hits} == {"a"}
        assert {h.doc_id for h in kb.retrieve("platform", ["news"], "gpu quota", mode=mode, filters={"region": ["us", "eu"]}).hits} == {"a", "b"}
    with pytest.raises(InvalidRequest):
        kb.retrieve("platform", ["news"], "gpu", filters={"bad key!": 1})


def test_rerank_and_modes_return_ranks(kb) -> None:
    kb.create_collection("platform", "news", "fluid")
    kb.ingest("platform", "news", [RawDocument(f"d{i}", f"topic {i} " + "filler " * i) for i in range(8)])
    for mode, present in (("bm25", {"bm25"}), ("dense", {"dense"}), ("hybrid", {"bm25", "dense"})):
        hits = kb.retrieve("platform", ["news"], "topic 3", mode=mode, top_k=8).hits
        # every hit says which list(s) it came from, with 1-based ranks that agree with that list's order
        assert all({k for k, v in h.ranks.items() if v is not None} <= present for h in hits)
        if mode != "hybrid":
            assert [h.ranks[mode] for h in hits] == list(range(1, len(hits) + 1))
    res = kb.retrieve("platform", ["news"], "topic 3", rerank=True, top_k=5)
    assert len(res.hits) == 5 and "rerank_ms" in res.timings_ms
    assert res.hits[0].doc_id == "d3"  # the only exact match, on both scores
    # The reranker's scores decide the order: recompute them from the candidates' own scores.
    assert [h.score for h in res.hits] == sorted((h.score for h in res.hits), reverse=True)
    assert 0.0 <= res.hits[-1].score < res.hits[0].score <= 1.0  # min-max normalized convex combination


def test_state_survives_restart_and_orphans_are_dropped(make_kb, tmp_path) -> None:
    path = str(tmp_path / "qdrant")
    kb1 = make_kb(QdrantClient(path=path))
    kb1.create_collection("platform", "kb", "anchored")
    v1 = kb1.ingest("platform", "kb", snapshot_docs("alpha"), promote=True).version
    kb1.ingest("platform", "kb", snapshot_docs("beta"))
    kb1.create_collection("platform", "news", "fluid")
    kb1.ingest("platform", "news", [RawDocument("n", "kept across restarts")])
    kb1.store.create_physical("tw__kb__vdeadbeef", 4)  # what a crash mid-build leaves behind
    kb1.store.client.close()

    kb2 = make_kb(QdrantClient(path=path))
    assert kb2.get_collection("platform", "kb").active_version == v1
    assert versions_seen(kb2) == {"alpha"}
    assert [h.doc_id for h in kb2.retrieve("platform", ["news"], "restarts").hits] == ["n"]
    assert "tw__kb__vdeadbeef" not in kb2.store.physical_collections()
    kb2.store.client.close()


def test_drop_collection_removes_everything(kb) -> None:
    kb.create_collection("platform", "kb", "anchored")
    kb.ingest("platform", "kb", snapshot_docs("alpha"), promote=True)
    kb.drop_collection("platform", "kb")
    assert kb.store.physical_collections() == [kb.store.meta]
    with pytest.raises(NotFound):
        kb.retrieve("platform", ["kb"], "x")


def test_fails_on_bad_collection_requests(kb) -> None:
    with pytest.raises(InvalidRequest, match="collection name"):
        kb.create_collection("platform", "Bad__Name", "fluid")
    kb.create_collection("platform", "kb", "anchored")
    with pytest.raises(Conflict):
        kb.create_collection("platform", "kb", "fluid")
    with pytest.raises(InvalidRequest, match="anchored"):
        kb.delete_documents("platform", "kb", ["x"])
    with pytest.raises(InvalidRequest, match="query is empty"):
        kb.retrieve("platform", ["kb"], "  ")
