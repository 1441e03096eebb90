"""Where text came from decides what counts as an injection.

* ``user``: the person talking to the model. Quoting an attack to ask about it is not an attack, so
  quoted spans (quotation marks, back-ticks, code fences, ``>`` block quotes) are blanked before the
  per-segment pass; the whole message is still scored as written.
* ``tool`` / ``document``: tool results and retrieved passages are data. Any instruction in them
  addressed to the model is suspect, quoted or not, so nothing is blanked and the classifier sees
  the channel.
"""

from __future__ import annotations

import re
from typing import Literal

Channel = Literal["user", "tool", "document"]
CHANNELS: tuple[Channel, ...] = ("user", "tool", "document")

_QUOTED = re.compile(
    r"```.*?```"                       # code fence
    r"|`[^`\n]{8,}`"                   # inline code
    r"|\"[^\"\n]{12,}\""               # "..."
    r"|“[^”\n]{12,}”|„[^“”\n]{12,}[“”]|«[^»\n]{12,}»"
    r"|(?<![\w])'[^'\n]{12,}'(?![\w])"  # '...' (not apostrophes inside words)
    r"|^[ \t]*>[^\n]*$",               # block quote lines
    re.DOTALL | re.MULTILINE,
)


def check_channel(channel: str) -> Channel:
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {list(CHANNELS)}, got {channel!r}")
    return channel  # type: ignore[return-value]


def quoted_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _QUOTED.finditer(text)]


def blank_quotes(text: str) -> str:
    """``text`` with every quoted span replaced by spaces (offsets are preserved)."""
    spans = quoted_spans(text)
    if not spans:
        return text
    parts, pos = [], 0
    for s, e in spans:
        parts.append(text[pos:s])
        parts.append(re.sub(r"[^\n]", " ", text[s:e]))
        pos = e
    parts.append(text[pos:])
    return "".join(parts)
