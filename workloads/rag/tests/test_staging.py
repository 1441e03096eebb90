"""Anchored staging: one version built over many requests, invisible to queries until committed,
expired when abandoned; the HTTP API and the CLI use the same path."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from qdrant_client import QdrantClient
from rag_helpers import auth, make_settings
from typer.testing import CliRunner

from tierwise_rag.app import create_app
from tierwise_rag.cli import app as cli_app
from tierwise_rag.documents import RawDocument
from tierwise_rag.embedding import HashingEmbedder
from tierwise_rag.engine import Conflict, InvalidRequest, NotFound


class OtherEmbedder(HashingEmbedder):
    """The same vectors under another name: what switching TIERWISE_RAG_EMBED_QUANTIZED looks like to the registry."""

    def __init__(self) -> None:
        super().__init__()
        self.name = "other-embedder"


def docs(tag: str, ids: range) -> list[RawDocument]:
    return [RawDocument(f"doc-{i}", f"Handbook {tag} page {i}: the {tag} release covers widget{i}.") for i in ids]


def tags(kb, name: str = "kb") -> set[str]:
    return {h.text.split()[1] for h in kb.retrieve("platform", [name], "handbook release widget page", top_k=50).hits}


def test_staged_version_equals_one_request_version_and_stays_invisible_until_commit(kb) -> None:
    kb.create_collection("platform", "kb", "anchored")
    v_old = kb.ingest("platform", "kb", docs("old", range(5)), promote=True).version
    st = kb.open_staging("platform", "kb")
    for part in (range(0, 4), range(4, 8), range(8, 12)):
        res = kb.stage_documents("platform", "kb", st.id, docs("new", part))
        assert [r.status for r in res] == ["ingested"] * len(part)
        assert tags(kb) == {"old"}  # the staging version is never read by a query
    # Re-sending a document replaces its earlier chunks (last write wins).
    kb.stage_documents("platform", "kb", st.id, [RawDocument("doc-3", "Handbook new page 3: rewritten.")])
    assert tags(kb) == {"old"}
    rep = kb.commit_staging("platform", "kb", st.id)
    assert rep.created_version and not rep.promoted and tags(kb) == {"old"}
    assert kb.get_collection("platform", "kb").staging == []
    # The same content in one request gives the same version id: ids hash content, not how it arrived.
    one_shot = [*docs("new", range(12))]
    one_shot[3] = RawDocument("doc-3", "Handbook new page 3: rewritten.")
    again = kb.ingest("platform", "kb", one_shot)
    assert again.version == rep.version and not again.created_version
    kb.promote("platform", "kb", rep.version)
    assert tags(kb) == {"new"}
    info = kb.get_collection("platform", "kb")
    assert info.active_version == rep.version and {v.id for v in info.versions} == {v_old, rep.version}
    assert sum(1 for h in kb.retrieve("platform", ["kb"], "rewritten", top_k=50, mode="bm25").hits if h.doc_id == "doc-3") == 1
    kb.rollback("platform", "kb")
    assert tags(kb) == {"old"}


def test_concurrent_readers_never_see_a_half_built_version(kb) -> None:
    kb.create_collection("platform", "kb", "anchored")
    kb.ingest("platform", "kb", docs("old", range(6)), promote=True)
    seen: list[set[str]] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.append(tags(kb))

    def reads_after_now() -> int:
        """Block until the reader has finished a query that began after this call (the one in flight
        when it is called may have begun before): without this, a loaded scheduler can run the whole
        staging before the reader's first query, and the test would prove nothing."""
        mark, deadline = len(seen), time.monotonic() + 30
        while len(seen) < mark + 2:
            assert t.is_alive() and time.monotonic() < deadline, f"the reader stopped at {len(seen)} queries"
            time.sleep(0.001)
        return len(seen)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        st = kb.open_staging("platform", "kb")
        reads_after_now()
        for i in range(0, 30, 5):
            kb.stage_documents("platform", "kb", st.id, docs("new", range(i, i + 5)))
            n_during = reads_after_now()  # at least one query ran against each half-built state
        kb.commit_staging("platform", "kb", st.id, promote=True)
        assert tags(kb) == {"new"}  # promotion is visible as soon as the commit returns
        reads_after_now()
    finally:
        stop.set()
        t.join()
    assert all(s == {"old"} for s in seen[:n_during])
    assert seen[-1] == {"new"} and all(s in ({"old"}, {"new"}) for s in seen)
    full = kb.retrieve("platform", ["kb"], "handbook release widget page", top_k=100, mode="bm25").hits
    assert len({h.doc_id for h in full}) == 30  # the committed version is whole


def test_abandoned_staging_expires_and_restart_keeps_open_ones(make_kb, clock, tmp_path) -> None:
    path = str(tmp_path / "q")
    kb = make_kb(QdrantClient(path=path), staging_ttl_seconds=600)
    kb.create_collection("platform", "kb", "anchored")
    keep = kb.open_staging("platform", "kb")
    gone = kb.open_staging("platform", "kb", ttl_seconds=60)
    kb.stage_documents("platform", "kb", keep.id, docs("a", range(3)))
    kb.stage_documents("platform", "kb", gone.id, docs("b", range(3)))
    assert {keep.physical, gone.physical} <= set(kb.store.physical_collections())
    clock.now += 120
    assert kb.expire_staging() == [f"kb/{gone.id}"]
    assert gone.physical not in kb.store.physical_collections()
    with pytest.raises(NotFound, match="no open staging"):
        kb.stage_documents("platform", "kb", gone.id, docs("b", range(1)))
    kb.store.client.close()

    kb2 = make_kb(QdrantClient(path=path), staging_ttl_seconds=600)  # a restart keeps an open staging version
    assert [s.id for s in kb2.list_staging("platform", "kb")] == [keep.id]
    kb2.stage_documents("platform", "kb", keep.id, docs("a", range(3, 5)))  # writes renew the expiry
    clock.now += 500
    rep = kb2.commit_staging("platform", "kb", keep.id, promote=True)
    assert rep.promoted and rep.counts == {"ingested": 5} and tags(kb2) == {"a"}
    kb2.store.client.close()
    kb3 = make_kb(QdrantClient(path=path))
    assert tags(kb3) == {"a"}  # the committed staging collection is the version's collection
    kb3.store.client.close()


def test_a_version_built_by_another_embedder_is_not_promoted(make_kb) -> None:
    """Switching the embedder (e.g. TIERWISE_RAG_EMBED_QUANTIZED) does not re-embed existing versions:
    promoting or rolling back to one would search its vectors with another model's query vectors."""
    client = QdrantClient(":memory:")
    old = make_kb(client)
    old.create_collection("platform", "kb", "anchored")
    v_old = old.ingest("platform", "kb", docs("a", range(3))).version
    new = make_kb(client, embedder=OtherEmbedder())
    v_new = new.ingest("platform", "kb", docs("b", range(3)), promote=True).version
    with pytest.raises(Conflict, match="embedded by 'hashing-256'.*'other-embedder'.*re-ingest"):
        new.promote("platform", "kb", v_old)
    assert new.get_collection("platform", "kb").active_version == v_new
    assert old.promote("platform", "kb", v_old).active_version == v_old  # the embedder that built it may


def test_staging_errors(kb) -> None:
    kb.create_collection("platform", "news", "fluid")
    with pytest.raises(InvalidRequest, match="fluid"):
        kb.open_staging("platform", "news")
    kb.create_collection("platform", "kb", "anchored")
    with pytest.raises(InvalidRequest, match="ttl_seconds"):
        kb.open_staging("platform", "kb", ttl_seconds=0)
    st = kb.open_staging("platform", "kb")
    with pytest.raises(InvalidRequest, match="no documents"):
        kb.commit_staging("platform", "kb", st.id)
    res = kb.stage_documents("platform", "kb", st.id, [RawDocument("x", ""), RawDocument("y", "fine text")])
    assert [r.status for r in res] == ["error", "ingested"] and res[0].error["code"] == "empty_document"
    kb.abort_staging("platform", "kb", st.id)
    with pytest.raises(NotFound):
        kb.commit_staging("platform", "kb", st.id)
    for _ in range(kb.max_open_staging):
        kb.open_staging("platform", "kb")
    with pytest.raises(Conflict, match="open staging"):
        kb.open_staging("platform", "kb")
    from tierwise_rag.access import AccessDenied

    with pytest.raises(AccessDenied):
        kb.open_staging("billing", "kb")


@contextlib.contextmanager
def served(app) -> Iterator[httpx.Client]:
    """The app under a real uvicorn server on a loopback port, and an HTTP client for it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}", timeout=60) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.mark.e2e
def test_two_thousand_documents_into_one_version_over_http() -> None:
    """Issue 17's acceptance: 2,000 documents into one anchored version through the HTTP API of a real
    uvicorn server (at most 256 per request), promote, query; queries during staging see only the
    previous version."""
    n, per_request = 2000, 256
    with served(create_app(make_settings())) as client:
        h = auth("platform")
        assert client.post("/v1/collections", json={"name": "handbook", "kind": "anchored"}, headers=h).status_code == 201
        r = client.post("/v1/ingest", headers=h, json={"collection": "handbook", "promote": True,
                                                       "documents": [{"id": "intro", "text": "Old handbook introduction."}]})
        v_old = r.json()["version"]
        r = client.post("/v1/collections/handbook/staging", json={"ttl_seconds": 900}, headers=h)
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        all_docs = [{"id": f"sec-{i:04d}", "text": f"Section {i}. Procedure token{i} applies to subsystem {i % 37}."} for i in range(n)]
        too_many = client.post(f"/v1/collections/handbook/staging/{sid}/documents", headers=h, json={"documents": all_docs[:per_request + 1]})
        assert too_many.status_code == 400 and "at most 256" in too_many.json()["error"]["message"]
        for i in range(0, n, per_request):
            r = client.post(f"/v1/collections/handbook/staging/{sid}/documents", headers=h, json={"documents": all_docs[i : i + per_request]})
            assert r.status_code == 200 and r.json()["counts"] == {"ingested": len(all_docs[i : i + per_request])}, r.text
            q = client.post("/v1/retrieve", headers=h, json={"collections": ["handbook"], "query": "procedure token17"})
            assert {x["version"] for x in q.json()["data"]} == {v_old}  # the half-built version is never read
        listed = client.get("/v1/collections/handbook/staging", headers=h).json()["data"]
        assert [s["id"] for s in listed] == [sid]
        r = client.post(f"/v1/collections/handbook/staging/{sid}/commit", json={"promote": True}, headers=h)
        body = r.json()
        assert r.status_code == 200 and body["promoted"] and body["created_version"] and body["counts"] == {"ingested": n}
        info = client.get("/v1/collections/handbook", headers=h).json()
        assert info["active_version"] == body["version"] and info["staging"] == []
        assert next(v for v in info["versions"] if v["id"] == body["version"])["documents"] == n
        r = client.post("/v1/retrieve", headers=h, json={"collections": ["handbook"], "query": "procedure token1234", "mode": "bm25"})
        top = r.json()["data"][0]
        assert (top["doc_id"], top["version"]) == ("sec-1234", body["version"])
        assert client.post(f"/v1/collections/handbook/staging/{sid}/commit", json={}, headers=h).status_code == 404


def test_cli_ingest_uses_staging(tmp_path, monkeypatch) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(7):
        (folder / f"page{i}.md").write_text(f"# Page {i}\n\nThe cli ingests page{i} about gadget{i}.\n")
    monkeypatch.setenv("TIERWISE_RAG_EMBEDDER", "hashing")
    monkeypatch.setenv("TIERWISE_RAG_QDRANT_PATH", str(tmp_path / "store"))
    runner = CliRunner()
    first = runner.invoke(cli_app, ["ingest", str(folder), "manual", "--batch", "3"])
    assert first.exit_code == 0, first.output
    assert '"created_version": true' in first.output and '"promoted": true' in first.output and '"ingested": 7' in first.output
    second = runner.invoke(cli_app, ["ingest", str(folder), "manual", "--batch", "2"])
    assert second.exit_code == 0 and '"created_version": false' in second.output and '"unchanged": 7' in second.output
    out = runner.invoke(cli_app, ["query", "manual", "gadget5", "--mode", "bm25", "--top-k", "1"])
    assert out.exit_code == 0 and "page5.md#0" in out.output


def test_a_collection_whose_active_version_another_embedder_built_is_not_served(make_kb, tmp_path) -> None:
    """Changing the embedder setting without re-ingesting would search the active version's vectors with another
    model's query vectors: that collection refuses queries with the reason (409), the others keep serving, the
    embedder that built it still serves it, and promoting a version the new embedder built serves it again."""
    path = str(tmp_path / "q")
    kb = make_kb(QdrantClient(path=path))
    kb.create_collection("platform", "kb", "anchored")
    kb.ingest("platform", "kb", docs("a", range(3)), promote=True)
    kb.store.client.close()
    other = make_kb(QdrantClient(path=path), embedder=OtherEmbedder())
    with pytest.raises(Conflict, match="embedded by 'hashing-256'.*'other-embedder'.*re-ingest"):
        other.retrieve("platform", ["kb"], "handbook", top_k=5)
    other.create_collection("platform", "fresh", "anchored")  # the rest of the service works
    other.ingest("platform", "fresh", docs("b", range(2)), promote=True)
    assert other.retrieve("platform", ["fresh"], "handbook", top_k=5).hits
    v_new = other.ingest("platform", "kb", docs("c", range(2))).version
    other.promote("platform", "kb", v_new)
    assert other.retrieve("platform", ["kb"], "handbook", top_k=5).hits
    other.store.client.close()
    again = make_kb(QdrantClient(path=path))  # now the old embedder is the mismatched one, for this collection only
    with pytest.raises(Conflict, match="embedded by 'other-embedder'.*'hashing-256'"):
        again.retrieve("platform", ["kb"], "handbook", top_k=5)
    assert again.get_collection("platform", "kb").active_version == v_new
    again.drop_collection("platform", "kb")  # a collection recreated under the same name carries nothing over
    again.create_collection("platform", "kb", "fluid")
    again.ingest("platform", "kb", docs("d", range(2)))
    assert again.retrieve("platform", ["kb"], "handbook", top_k=5).hits
    again.store.client.close()


def test_a_fluid_collection_another_embedder_wrote_is_neither_served_nor_extended(make_kb, tmp_path) -> None:
    """A fluid collection records the embedder of its points: a service running another one refuses its
    queries and its upserts (either would mix two models' vectors) with the reason, still deletes from
    it, and the embedder that wrote it keeps serving it. Entries written before the field existed carry
    no embedder and are served as before."""
    path = str(tmp_path / "q")
    kb = make_kb(QdrantClient(path=path))
    kb.create_collection("platform", "news", "fluid")
    kb.create_collection("platform", "legacy", "fluid")
    kb.ingest("platform", "news", docs("a", range(3)))
    kb.ingest("platform", "legacy", docs("a", range(3)))
    assert kb.get_collection("platform", "news").embedder == "hashing-256"
    legacy = kb.get_collection("platform", "legacy").model_dump()
    del legacy["embedder"]  # as an older service saved it
    kb.store.save_entry(legacy)
    kb.store.client.close()

    other = make_kb(QdrantClient(path=path), embedder=OtherEmbedder())
    for call in (lambda: other.retrieve("platform", ["news"], "handbook", top_k=5),
                 lambda: other.ingest("platform", "news", docs("b", range(1)))):
        with pytest.raises(Conflict, match="fluid collection 'news' was embedded by 'hashing-256'.*'other-embedder'.*drop it"):
            call()
    assert [r.status for r in other.delete_documents("platform", "news", ["doc-0"])] == ["deleted"]
    assert other.retrieve("platform", ["legacy"], "handbook", top_k=5).hits
    other.store.client.close()

    again = make_kb(QdrantClient(path=path))
    assert {h.doc_id for h in again.retrieve("platform", ["news"], "handbook", top_k=5).hits} == {"doc-1", "doc-2"}
    again.store.client.close()


def test_a_staging_version_opened_under_another_embedder_is_not_extended_or_committed(make_kb) -> None:
    client = QdrantClient(":memory:")
    kb = make_kb(client)
    kb.create_collection("platform", "kb", "anchored")
    st = kb.open_staging("platform", "kb")
    assert st.embedder == "hashing-256"
    kb.stage_documents("platform", "kb", st.id, docs("a", range(2)))
    other = make_kb(client, embedder=OtherEmbedder())  # the service restarted with another embedder mid-staging
    for call in (lambda: other.stage_documents("platform", "kb", st.id, docs("b", range(1))),
                 lambda: other.commit_staging("platform", "kb", st.id)):
        with pytest.raises(Conflict, match=f"staging version '{st.id}' of 'kb' was embedded by 'hashing-256'.*abort it"):
            call()
    assert other.get_collection("platform", "kb").versions == []
    other.abort_staging("platform", "kb", st.id)
    assert other.list_staging("platform", "kb") == []
