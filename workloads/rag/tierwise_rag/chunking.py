"""Structure-aware chunking for text, Markdown and HTML.

A document is first parsed into *blocks* (a paragraph, list item, code block or table row group)
that each carry the heading path above them. Blocks are then packed, in order and within one
section, into chunks of at most ``max_tokens`` tokens (counted with the embedding model's own
tokenizer, headings included), with ``overlap_tokens`` of trailing context from the previous chunk
of the same section. A block longer than the budget is split at sentence boundaries, then at word
boundaries, so no chunk ever exceeds the budget (the embedding model truncates silently at 256
word pieces: a longer chunk would be indexed for BM25 but only partly embedded).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from selectolax.lexbor import LexborHTMLParser as HTMLParser

TokenCounter = Callable[[str], int]

_WORD_RE = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")


def approx_token_count(text: str) -> int:
    """Word/punctuation count: a cheap upper-ish bound of WordPiece tokens for English prose."""
    return len(_WORD_RE.findall(text))


@dataclass(frozen=True, slots=True)
class Block:
    text: str
    headings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Chunk:
    index: int
    text: str  # body only
    headings: tuple[str, ...] = field(default=())

    @property
    def heading_path(self) -> str:
        return " > ".join(self.headings)

    @property
    def embed_text(self) -> str:
        """What is embedded and BM25-indexed: the heading path as context, then the body."""
        return f"{self.heading_path}\n\n{self.text}" if self.headings else self.text


@dataclass(frozen=True, slots=True)
class ChunkingConfig:
    max_tokens: int = 200
    overlap_tokens: int = 32

    def __post_init__(self) -> None:
        if self.max_tokens < 16:
            raise ValueError("max_tokens must be at least 16")
        if not 0 <= self.overlap_tokens < self.max_tokens // 2:
            raise ValueError("overlap_tokens must be >= 0 and less than half of max_tokens")


# --------------------------------------------------------------------------------------- parsing


def _norm_ws(text: str) -> str:
    """Collapse all whitespace: line breaks inside a paragraph carry no meaning."""
    return " ".join(text.split())


def parse_text(text: str) -> list[Block]:
    """Plain text: paragraphs are separated by blank lines; no headings."""
    return [Block(_norm_ws(p)) for p in re.split(r"\n\s*\n", text) if p.strip()]


def parse_markdown(text: str) -> list[Block]:
    md = MarkdownIt("commonmark").enable("table")
    tokens = md.parse(text)
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == "heading_open":
            level = int(tok.tag[1:])
            title = tokens[i + 1].content.strip()
            path = [(lvl, t) for lvl, t in path if lvl < level] + [(level, title)]
            i += 3
            continue
        if tok.type == "inline" and tok.content.strip():
            blocks.append(Block(_norm_ws(tok.content), tuple(t for _, t in path)))
        elif tok.type in ("fence", "code_block") and tok.content.strip():
            blocks.append(Block(tok.content.strip("\n"), tuple(t for _, t in path)))
        i += 1
    return _merge_table_cells(blocks)


def _merge_table_cells(blocks: list[Block]) -> list[Block]:
    # markdown-it emits each table cell as its own inline token; short consecutive blocks under the
    # same headings are merged back by the packer anyway, so nothing to do beyond passing through.
    return blocks


_HTML_BLOCK_TAGS = ("p", "li", "pre", "td", "th", "dd", "dt", "blockquote", "figcaption")
_HTML_SKIP_TAGS = ("script", "style", "noscript", "template", "head", "nav")


def parse_html(text: str) -> list[Block]:
    tree = HTMLParser(text)
    for node in tree.css(",".join(_HTML_SKIP_TAGS)):
        node.decompose()
    body = tree.body or tree.root
    if body is None:
        return []
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []
    selector = "h1,h2,h3,h4,h5,h6," + ",".join(_HTML_BLOCK_TAGS)
    for node in body.css(selector):
        tag = node.tag
        if tag[0] == "h" and tag[1:].isdigit():
            level = int(tag[1:])
            title = _norm_ws(node.text(separator=" "))
            if title:
                path = [(lvl, t) for lvl, t in path if lvl < level] + [(level, title)]
            continue
        # Take a block only at its innermost block-level ancestor: skip containers holding blocks.
        descendants = iter(node.traverse(include_text=False))
        next(descendants, None)  # traverse() yields the node itself first (as a new wrapper object)
        if any(child.tag in _HTML_BLOCK_TAGS for child in descendants):
            continue
        content = node.text(separator=" ", deep=True)
        content = content.strip("\n") if tag == "pre" else _norm_ws(content)
        if content.strip():
            blocks.append(Block(content, tuple(t for _, t in path)))
    if not blocks:  # HTML without block tags: fall back to its text
        fallback = _norm_ws(body.text(separator="\n"))
        return [Block(fallback)] if fallback else []
    return blocks


PARSERS: dict[str, Callable[[str], list[Block]]] = {
    "text/plain": parse_text,
    "text/markdown": parse_markdown,
    "text/html": parse_html,
}


def parse(text: str, content_type: str) -> list[Block]:
    try:
        parser = PARSERS[content_type]
    except KeyError:
        raise ValueError(f"unsupported content_type {content_type!r}; use one of {sorted(PARSERS)}") from None
    return parser(text)


# --------------------------------------------------------------------------------------- packing


def _split_words(text: str, budget: int, count: TokenCounter) -> list[str]:
    words = text.split(" ")
    out: list[str] = []
    cur: list[str] = []
    for word in words:
        if cur and count(" ".join([*cur, word])) > budget:
            out.append(" ".join(cur))
            cur = []
        if not cur and count(word) > budget:  # a single giant "word": cut by characters
            step = max(1, len(word) * budget // max(1, count(word)))
            out.extend(word[i : i + step] for i in range(0, len(word), step))
            continue
        cur.append(word)
    if cur:
        out.append(" ".join(cur))
    return out


def _split_to_fit(text: str, budget: int, count: TokenCounter) -> list[str]:
    """Pieces of ``text`` each within ``budget`` tokens: sentences first, words as a fallback."""
    if count(text) <= budget:
        return [text]
    pieces: list[str] = []
    for sentence in _SENTENCE_RE.split(text):
        if count(sentence) <= budget:
            pieces.append(sentence)
        else:
            pieces.extend(_split_words(sentence, budget, count))
    # Re-pack sentences greedily so pieces are as large as the budget allows.
    packed: list[str] = []
    for piece in pieces:
        if packed and count(packed[-1] + " " + piece) <= budget:
            packed[-1] = packed[-1] + " " + piece
        else:
            packed.append(piece)
    return packed


def _tail(pieces: list[str], overlap: int, count: TokenCounter) -> list[str]:
    """Trailing pieces (whole sentences, else trailing words) totalling at most ``overlap`` tokens."""
    if overlap <= 0 or not pieces:
        return []
    sentences = [s for p in pieces for s in _SENTENCE_RE.split(p)]
    out: list[str] = []
    for sentence in reversed(sentences):
        if count(" ".join([sentence, *out])) > overlap:
            break
        out.insert(0, sentence)
    if not out:
        words = sentences[-1].split(" ")
        tail: list[str] = []
        for word in reversed(words):
            if count(" ".join([word, *tail])) > overlap:
                break
            tail.insert(0, word)
        out = [" ".join(tail)] if tail else []
    return out


def chunk_blocks(blocks: Iterable[Block], config: ChunkingConfig, count: TokenCounter = approx_token_count) -> list[Chunk]:
    chunks: list[Chunk] = []
    sections: list[tuple[tuple[str, ...], list[str]]] = []
    for block in blocks:
        if sections and sections[-1][0] == block.headings:
            sections[-1][1].append(block.text)
        else:
            sections.append((block.headings, [block.text]))

    for headings, texts in sections:
        heading_cost = count(" > ".join(headings)) + 2 if headings else 0
        if heading_cost > config.max_tokens // 2:  # absurd heading paths: keep only the innermost
            headings = headings[-1:]
            heading_cost = count(headings[0]) + 2
        budget = config.max_tokens - heading_cost
        overlap = min(config.overlap_tokens, budget // 3)
        current: list[str] = []
        fresh = False  # does `current` hold anything beyond the overlap carried over?

        def flush() -> None:
            nonlocal current, fresh
            if fresh and current:
                chunks.append(Chunk(len(chunks), "\n".join(current), headings))
                current = _tail(current, overlap, count)
            fresh = False

        for text in texts:
            for piece in _split_to_fit(text, budget - overlap if overlap else budget, count):
                if current and count("\n".join([*current, piece])) > budget:
                    flush()
                    while current and count("\n".join([*current, piece])) > budget:
                        current.pop(0)
                current.append(piece)
                fresh = True
        flush()
    return chunks


def chunk_document(text: str, content_type: str, config: ChunkingConfig, count: TokenCounter = approx_token_count) -> list[Chunk]:
    return chunk_blocks(parse(text, content_type), config, count)
