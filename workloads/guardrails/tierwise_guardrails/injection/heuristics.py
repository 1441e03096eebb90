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


# Instructions addressed to the model from inside data (web pages, tool results, documents): the
# v2 classifier reads these as features, per channel, rather than trusting them blindly.
ADDRESSED_TO_MODEL: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("note-to-model", re.compile(
        r"(?i)\b(?:note|message|instructions?|directive|reminder|attention|hint|p\.?s\.?)\s*(?:to|for)?\s*(?:the|any|all|whichever|every)?\s*"
        r"(?:ai|a\.i\.|assistant|(?:language\s+)?model|llm|chat\s?bot|bot|agent|summari[sz]er|copilot)s?\b")),
    ("model-reading-this", re.compile(
        r"(?i)\b(?:ai|assistant|(?:language\s+)?model|llm|chat\s?bot|bot|agent)s?\b[^.\n]{0,40}\b(?:reading|processing|summari[sz]ing|parsing|seeing)\s+this")),
    ("role-line", re.compile(r"(?im)^\s*(?:system|assistant|developer|admin)\s*(?:note|message)?\s*:")),
    ("do-not-tell", re.compile(r"(?i)\b(?:do not|don't|never)\s+(?:mention|reveal|tell|disclose)\s+(?:this|that you|the user)")),
    ("tool-call-order", re.compile(r"(?i)\b(?:call|use|run|invoke|execute)\s+(?:the\s+)?[a-z]+_[a-z_]+\b|\bcurl\s+\S+\s*\|\s*(?:ba)?sh\b")),
)


def heuristic_features(text: str) -> list[float]:
    """One value per pattern of HEURISTICS (its score if it matches) and ADDRESSED_TO_MODEL (1.0)."""
    out = [score if rx.search(text) else 0.0 for _, score, rx in HEURISTICS]
    out += [1.0 if rx.search(text) else 0.0 for _, rx in ADDRESSED_TO_MODEL]
    return out
