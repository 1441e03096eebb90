"""RAG's log lines follow the shared convention (docs/logging.md): one JSON object per line on stdout
with ts/level/service/logger/event and the request's fields, no query text."""

from __future__ import annotations

from fastapi.testclient import TestClient
from rag_helpers import auth, make_settings
from tierwise_logs import check_lines

from tierwise_rag.app import create_app
from tierwise_rag.settings import Settings


def test_request_lines_follow_the_convention(capsys) -> None:
    s: Settings = make_settings()
    with TestClient(create_app(s)) as c:
        capsys.readouterr()  # start-up output is not under test here
        r = c.post("/v1/collections", json={"name": "conv-kb", "kind": "anchored"}, headers=auth("platform"))
        assert r.status_code == 201, r.text
        r = c.post("/v1/retrieve", json={"collections": ["conv-kb"], "query": "secret-query-words"}, headers=auth("platform"))
        assert r.status_code == 200, r.text
    out = capsys.readouterr().out
    lines = check_lines(out)  # raises on any line that breaks the convention
    req = [ln for ln in lines if ln["event"] == "request"]
    assert [ln["route"] for ln in req] == ["/v1/collections", "/v1/retrieve"]
    assert {(ln["service"], ln["logger"], ln["level"]) for ln in req} == {("tierwise-rag", "tierwise.rag.api", "info")}
    assert all(ln["status"] in (200, 201) and ln["latency_ms"] >= 0 and ln["request_id"] for ln in req)
    assert "secret-query-words" not in out
