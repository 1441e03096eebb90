"""Cheap, high-precision patterns for well-known injection phrasings and chat-template smuggling.
Each hit yields a score; the detector takes the max of these and the classifier's score."""

from __future__ import annotations

import re

HEURISTICS: tuple[tuple[str, float, re.Pattern[str]], ...] = (
    ("ignore-previous", 0.95, re.compile(
        r"(?i)\b(?:ignore|disregard|forget|override|bypass|skip)\s+(?:all\s+|any\s+|the\s+|your\s+|my\s+|every\s+)*"
        r"(?:previous|prior|above|earlier|preceding|former|original|system|initial)\s+"
        r"(?:instructions?|prompts?|rules?|directions?|guidelines?|messages?|context|commands?)")),
    ("reveal-system-prompt", 0.9, re.compile(
        r"(?i)\b(?:reveal|print|show|repeat|output|leak|display|tell me)\s+(?:me\s+)?(?:your|the)\s+"
        r"(?:system\s+prompt|hidden\s+(?:prompt|instructions)|initial\s+instructions|developer\s+(?:message|instructions))")),
    ("new-instructions", 0.85, re.compile(
        r"(?i)\b(?:new|updated|real|actual)\s+instructions?\s*(?::|follow|are)|\bbegin\s+new\s+instructions\b")),
    ("persona-unrestricted", 0.9, re.compile(
        r"(?i)\b(?:do anything now|developer mode (?:enabled|output)|jailbr(?:eak|oken)|"
        r"(?:no|without any|free of)\s+(?:ethical|moral|content)\s+(?:guidelines|restrictions|filters|limits)|"
        r"you are (?:no longer|not) bound by|pretend (?:that )?you (?:have no|are not bound))")),
    ("chat-template-smuggling", 0.9, re.compile(
        r"<\|im_start\|>\s*system|<\|system\|>|\[/?INST\]|<<SYS>>|<\|start_header_id\|>\s*system|^\s*###\s*(?:system|instruction)\s*:",
        re.MULTILINE | re.IGNORECASE)),
)


def heuristic_hits(text: str) -> list[tuple[str, float, int, int]]:
    """(name, score, start, end) for every pattern match."""
    out = []
    for name, score, rx in HEURISTICS:
        for m in rx.finditer(text):
            out.append((name, score, m.start(), m.end()))
    return out
