from __future__ import annotations

import base64
import json

from rag_helpers import EVENT_PUT, auth


def _create(client, name: str, kind: str, **extra) -> None:
    r = client.post("/v1/collections", json={"name": name, "kind": kind, **extra}, headers=auth("platform"))
    assert r.status_code == 201, r.text


def test_ingest_retrieve_promote_rollback_over_http(client) -> None:
    _create(client, "support-kb", "anchored")
    docs = [{"id": "a", "text": "# Reset\n\nUse the reset link.", "content_type": "text/markdown"},
            {"id": "bad", "content_base64": base64.b64encode(b"\x00\xff").decode()}]
    r = client.post("/v1/ingest", json={"collection": "support-kb", "documents": docs, "promote": True}, headers=auth("platform"))
    body = r.json()
    assert r.status_code == 200 and body["promoted"] and body["counts"] == {"ingested": 1, "error": 1}
    assert body["results"][1]["error"]["code"] == "binary_content"
    v1 = body["version"]
    r = client.post("/v1/retrieve", json={"collections": ["support-kb"], "query": "reset link"}, headers=auth("support"))
    hit = r.json()["data"][0]
    assert (hit["doc_id"], hit["headings"], hit["version"]) == ("a", ["Reset"], v1)

    r = client.post("/v1/ingest", json={"collection": "support-kb", "documents": [{"id": "a", "text": "Use the new portal."}]}, headers=auth("platform"))
    v2 = r.json()["version"]
    assert client.post("/v1/collections/support-kb/promote", json={"version": v2}, headers=auth("platform")).json()["active_version"] == v2
    versions = client.get("/v1/collections/support-kb/versions", headers=auth("platform")).json()
    assert versions["active_version"] == v2 and {v["id"] for v in versions["data"]} == {v1, v2}
    assert client.post("/v1/collections/support-kb/rollback", json={}, headers=auth("platform")).json()["active_version"] == v1
    r = client.post("/v1/retrieve", json={"collections": ["support-kb"], "query": "portal reset"}, headers=auth("support"))
    assert {h["version"] for h in r.json()["data"]} == {v1}


def test_access_control_over_http(client) -> None:
    _create(client, "billing-kb", "anchored")
    r = client.post("/v1/retrieve", json={"collections": ["billing-kb"], "query": "x"}, headers=auth("support"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "collection_not_granted"
    r = client.post("/v1/retrieve", json={"collections": ["billing-kb"], "query": "x"}, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    r = client.post("/v1/collections", json={"name": "billing-x", "kind": "fluid"}, headers=auth("billing"))
    assert r.status_code == 403
    names = [c["name"] for c in client.get("/v1/collections", headers=auth("billing")).json()["data"]]
    assert names == ["billing-kb"]


def test_fluid_over_http_with_staleness_and_delete(client) -> None:
    _create(client, "support-news", "fluid", max_age_seconds=3600)
    r = client.post("/v1/ingest", json={"collection": "support-news", "documents": [
        {"id": "n1", "text": "Outage in eu-west.", "source_version": "etag-1", "metadata": {"region": "eu"}}]}, headers=auth("support"))
    assert r.json()["counts"] == {"ingested": 1}
    st = client.get("/v1/collections/support-news/staleness", headers=auth("support")).json()
    assert (st["documents"], st["stale_documents"]) == (1, 0)
    r = client.post("/v1/retrieve", json={"collections": ["support-news"], "query": "outage", "filters": {"region": "eu"}, "rerank": True}, headers=auth("support"))
    assert [h["source_version"] for h in r.json()["data"]] == ["etag-1"]
    r = client.post("/v1/collections/support-news/documents:delete", json={"ids": ["n1"]}, headers=auth("support"))
    assert r.json()[0]["status"] == "deleted"
    metrics = client.get("/metrics").text
    assert 'tierwise_rag_fluid_oldest_age_seconds{collection="support-news"}' in metrics
    assert 'tierwise_rag_requests_total{route="/v1/retrieve",status="200"}' in metrics
    assert 'tierwise_rag_documents_total{kind="fluid",status="ingested"}' in metrics


def test_errors_use_openai_envelope(client) -> None:
    r = client.post("/v1/retrieve", json={"collections": ["nope"], "query": "x", "top_k": 0}, headers=auth("platform"))
    assert r.status_code == 400 and r.json()["error"]["param"] == "top_k"
    r = client.post("/v1/retrieve", json={"collections": ["nope"], "query": "x"}, headers=auth("platform"))
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    r = client.post("/v1/ingest", json={"collection": "x", "documents": [{"id": "a"}]}, headers=auth("platform"))
    assert r.status_code == 400 and "exactly one of text or content_base64" in r.json()["error"]["message"]
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_s3_event_endpoint_applies_real_notification_shape() -> None:
    from fastapi.testclient import TestClient

    from rag_helpers import make_settings
    from tierwise_rag.app import create_app

    settings = make_settings(s3_sources=[{"bucket": "kb-bucket", "prefix": "news/", "collection": "support-news", "team": "support"}])
    with TestClient(create_app(settings)) as client:
        _create(client, "support-news", "fluid")
        note = json.loads(EVENT_PUT)
        r = client.post("/v1/events/s3", json={"notification": note, "objects": {"kb-bucket/news/status page.md": "# Status\n\nAll green."}}, headers=auth("support"))
        assert r.status_code == 200, r.text
        assert r.json()["data"][0] == {"id": "s3://kb-bucket/news/status page.md", "status": "ingested", "chunks": 1, "error": None}
        docs = client.get("/v1/collections/support-news/documents", headers=auth("support")).json()["data"]
        assert docs[0]["source_version"] == "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"
