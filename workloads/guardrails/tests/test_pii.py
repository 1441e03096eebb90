from __future__ import annotations

import pytest

from tierwise_guardrails.findings import Finding
from tierwise_guardrails.pii.detector import resolve_overlaps
from tierwise_guardrails.pii.recognizers import (
    find_cards, find_dobs, find_emails, find_ibans, find_ips, find_mrns, find_phones, find_secrets, find_ssns,
)
from tierwise_guardrails.pii.redact import keyed_hash, redact


def spans(text, findings):
    return [text[f.start : f.end] for f in findings]


@pytest.mark.parametrize(
    "fn,text,expected",
    [
        (find_emails, "write to jane.doe+x@mail.example.co.uk today", ["jane.doe+x@mail.example.co.uk"]),
        (find_cards, "card 4111 1111 1111 1111 ok", ["4111 1111 1111 1111"]),
        (find_cards, "amex 378282246310005.", ["378282246310005"]),
        (find_ibans, "IBAN GB82 WEST 1234 5698 7654 32 please", ["GB82 WEST 1234 5698 7654 32"]),
        (find_ibans, "DE89370400440532013000", ["DE89370400440532013000"]),
        (find_ssns, "SSN 536-90-4399", ["536-90-4399"]),
        (find_ssns, "my social security number is 536904399", ["536904399"]),
        (find_ips, "from 192.168.10.1 and 2001:db8::8a2e:370:7334", ["192.168.10.1", "2001:db8::8a2e:370:7334"]),
        (find_phones, "call me at +44 20 7946 0958", ["+44 20 7946 0958"]),
        (find_phones, "phone: (415) 555-2671", ["(415) 555-2671"]),
        (find_secrets, "aws key AKIAIOSFODNN7EXAMPLE here", ["AKIAIOSFODNN7EXAMPLE"]),
        (find_secrets, "token ghp_" + "a1B2" * 9, ["ghp_" + "a1B2" * 9]),
        (find_secrets, "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCY1EXAMPLEKEY", ["wJalrXUtnFEMI/K7MDENG/bPxRfiCY1EXAMPLEKEY"]),
        (find_dobs, "patient born on 03/04/1985", ["03/04/1985"]),
        (find_dobs, "Date of birth: March 4, 1985", ["March 4, 1985"]),
        (find_mrns, "MRN: A1234567 admitted", ["A1234567"]),
    ],
)
def test_recognizer_finds_valid_values(fn, text, expected):
    assert spans(text, fn(text)) == expected


@pytest.mark.parametrize(
    "fn,text",
    [
        (find_cards, "order 4111 1111 1111 1112 shipped"),  # Luhn fails
        (find_cards, "0000 0000 0000 0000"),
        (find_ibans, "GB82 WEST 1234 5698 7654 33"),  # mod-97 fails
        (find_ssns, "SSN 000-12-3456"),  # area 000 never issued
        (find_ssns, "SSN 666-12-3456"),
        (find_ssns, "id 900-12-3456"),  # 9xx areas are ITINs, not SSNs
        (find_ips, "version 1.2.3.999 released"),
        (find_phones, "released on 2023-01-15"),
        (find_dobs, "the meeting is on 03/04/1985"),  # a date without birth context
        (find_mrns, "the record shows improvement"),
        (find_secrets, "password = hunter"),  # too short / low entropy
        (find_emails, "not an email: a@b"),
    ],
)
def test_recognizer_rejects_invalid_or_contextless_values(fn, text):
    assert fn(text) == []


def test_ner_finds_person_and_location(pii_detector):
    text = "Yesterday Angela Merkel flew from Berlin to Paris."
    got = {(f.type, text[f.start : f.end]) for f in pii_detector.detect(text)}
    assert ("PERSON", "Angela Merkel") in got
    assert ("LOCATION", "Berlin") in got and ("LOCATION", "Paris") in got


def test_ner_ignores_ordinary_words(pii_detector):
    text = "Please summarise the quarterly report and list three action items."
    assert pii_detector.detect(text) == []


def test_overlaps_prefer_validated_patterns_over_ner():
    ner = Finding("PERSON", 0, 10, 0.85, "spacy:en_core_web_sm")
    card = Finding("CREDIT_CARD", 5, 24, 1.0, "regex+luhn")
    assert resolve_overlaps([ner, card]) == [card]


@pytest.mark.parametrize(
    "op,expected",
    [("mask", "mail ************* now"), ("tag", "mail <EMAIL_ADDRESS> now")],
)
def test_operators(op, expected):
    text = "mail bob@corp.io.xy now"
    f = find_emails(text)
    assert redact(text, f, {}, default=op, key=b"k") == expected.replace("*************", "*" * len("bob@corp.io.xy"))


def test_hash_operator_is_keyed_and_stable():
    text = "mail bob@corp.io now"
    f = find_emails(text)
    a = redact(text, f, {"EMAIL_ADDRESS": "hash"}, key=b"k1")
    b = redact(text, f, {"EMAIL_ADDRESS": "hash"}, key=b"k1")
    c = redact(text, f, {"EMAIL_ADDRESS": "hash"}, key=b"k2")
    assert a == b != c
    assert "bob@corp.io" not in a and keyed_hash(b"k1", "bob@corp.io", 12) in a
