from __future__ import annotations

import json

import pytest

from tierwise_guardrails.audit import AuditLog, verify_file

KEY = b"k" * 32


@pytest.fixture
def log(tmp_path):
    a = AuditLog(tmp_path / "audit.jsonl", KEY)
    for i in range(5):
        a.append({"event": "check", "n": i, "redacted": [f"text {i}"]})
    return a


def lines(log):
    return log.path.read_text().splitlines(keepends=True)


def test_intact_chain_verifies(log):
    rep = log.verify()
    assert rep.ok and rep.records == 5 and rep.head_seq == 4


def test_edited_record_is_detected(log):
    ls = lines(log)
    rec = json.loads(ls[2])
    rec["redacted"] = ["tampered"]
    ls[2] = json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n"
    log.path.write_text("".join(ls))
    rep = verify_file(log.path, KEY)
    assert not rep.ok and any("MAC mismatch" in p for p in rep.problems)


def test_removed_record_is_detected(log):
    ls = lines(log)
    del ls[1]
    log.path.write_text("".join(ls))
    rep = verify_file(log.path, KEY)
    assert not rep.ok and any("removed" in p for p in rep.problems)


def test_reordered_records_are_detected(log):
    ls = lines(log)
    ls[1], ls[2] = ls[2], ls[1]
    log.path.write_text("".join(ls))
    assert not verify_file(log.path, KEY).ok


def test_truncated_tail_is_detected_via_head(log):
    ls = lines(log)
    log.path.write_text("".join(ls[:-2]))
    rep = verify_file(log.path, KEY)
    assert not rep.ok and any("removed from the end" in p for p in rep.problems)


def test_wrong_key_fails(log):
    assert not verify_file(log.path, b"other-key").ok


def test_torn_tail_from_a_crash_is_cut_on_open_and_chain_continues(log):
    with open(log.path, "ab") as f:
        f.write(b'{"event":"check","n":99,"redac')  # crash mid-write, never acknowledged
    again = AuditLog(log.path, KEY)
    rec = again.append({"event": "check", "n": 5})
    assert rec["seq"] == 5
    assert again.verify().ok


def test_records_hold_no_raw_pii(make_guard):
    g = make_guard()
    g.check("input", text="email jane.roe@example.org, card 4111 1111 1111 1111", team="t")
    raw = g.audit.path.read_text()
    assert "jane.roe@example.org" not in raw and "4111 1111 1111 1111" not in raw
    assert "value_hmac" in raw and g.audit.verify().ok
