"""Split text into scoring segments: paragraphs, then sentence-aligned windows of bounded size."""

from __future__ import annotations

import re

_PARA = re.compile(r"\n\s*\n")
_SENT_END = re.compile(r"(?<=[.!?])\s+")


def segments(text: str, max_chars: int = 600) -> list[tuple[int, int]]:
    """Return (start, end) offsets covering every non-blank part of ``text``."""
    out: list[tuple[int, int]] = []
    pos = 0
    bounds = [m.span() for m in _PARA.finditer(text)] + [(len(text), len(text))]
    for p_start, p_end in bounds:
        para_s, para_e = pos, p_start
        pos = p_end
        if not text[para_s:para_e].strip():
            continue
        if para_e - para_s <= max_chars:
            out.append((para_s, para_e))
            continue
        # Sentence-aligned windows of at most max_chars (a sentence longer than that is cut).
        cur = para_s
        last_cut = para_s
        for m in _SENT_END.finditer(text, para_s, para_e):
            if m.start() - cur > max_chars and last_cut > cur:
                # Flush up to the last sentence end; a first sentence longer than max_chars is cut.
                while last_cut - cur > max_chars:
                    out.append((cur, cur + max_chars))
                    cur += max_chars
                if last_cut > cur:
                    out.append((cur, last_cut))
                    cur = last_cut
            last_cut = m.end()
        while para_e - cur > max_chars:
            cut = last_cut if cur < last_cut <= cur + max_chars else cur + max_chars
            out.append((cur, cut))
            cur = cut
        if text[cur:para_e].strip():
            out.append((cur, para_e))
    return out
