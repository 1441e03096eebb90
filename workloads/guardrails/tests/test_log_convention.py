"""Guardrails' log lines follow the shared convention (docs/logging.md): one JSON object per line on
stdout with ts/level/service/logger/event and the decision's fields, never the checked text."""

from __future__ import annotations

from fastapi.testclient import TestClient
from tierwise_logs import check_lines

from tierwise_guardrails.app import create_app


def test_request_lines_follow_the_convention(make_guard, make_settings, capsys):
    s = make_settings()
    with TestClient(create_app(s, guard=make_guard())) as c:
        capsys.readouterr()
        r = c.post("/v1/check", json={"direction": "input", "text": "mail ann@example.org", "team": "t1",
                                      "future_field": 1})
        assert r.status_code == 200, r.text
    out = capsys.readouterr().out
    lines = check_lines(out)  # raises on any line that breaks the convention
    by_event = {ln["event"]: ln for ln in lines}
    req = by_event["request"]
    assert (req["service"], req["logger"], req["level"]) == ("tierwise-guardrails", "tierwise.guardrails", "info")
    assert (req["route"], req["status"], req["team"], req["direction"]) == ("/v1/check", 200, "t1", "input")
    assert req["decision"] == r.json()["decision"] and req["latency_ms"] > 0
    assert by_event["unknown_request_fields"]["unknown_fields"] == ["future_field"]
    assert "ann@example.org" not in out
