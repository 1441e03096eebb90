from __future__ import annotations

import pytest

from tierwise_rag.chunking import ChunkingConfig, approx_token_count, chunk_document, parse_html, parse_markdown


def test_markdown_keeps_heading_path_as_context() -> None:
    md = "# Guide\n\nIntro text.\n\n## Install\n\nRun the installer.\n\n### Offline\n\nCopy the wheel first.\n\n## Usage\n\nCall it."
    chunks = chunk_document(md, "text/markdown", ChunkingConfig(64, 8))
    by_text = {c.text: c.headings for c in chunks}
    assert by_text["Copy the wheel first."] == ("Guide", "Install", "Offline")
    assert by_text["Call it."] == ("Guide", "Usage")  # a sibling heading replaces, not nests
    offline = next(c for c in chunks if c.text == "Copy the wheel first.")
    assert offline.embed_text.startswith("Guide > Install > Offline\n\n")


def test_html_blocks_headings_and_script_dropped() -> None:
    html = """<html><head><title>T</title><script>var x = 'secret';</script></head><body>
      <h1>Top</h1><p>First   para
      spans lines.</p><ul><li><p>nested item</p></li></ul><h2>Sub</h2><pre>code  kept</pre>
      <style>.a{}</style></body></html>"""
    blocks = parse_html(html)
    texts = [(b.text, b.headings) for b in blocks]
    assert ("First para spans lines.", ("Top",)) in texts
    assert ("nested item", ("Top",)) in texts  # the innermost block only, not the li and the p
    assert ("code  kept", ("Top", "Sub")) in texts  # pre keeps its whitespace
    assert not any("secret" in t for t, _ in texts)


@pytest.mark.parametrize("max_tokens,overlap", [(32, 0), (48, 8), (100, 20)])
def test_chunks_never_exceed_budget_and_cover_text(max_tokens: int, overlap: int) -> None:
    sentences = [f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(60)]
    text = " ".join(sentences[:30]) + "\n\n" + " ".join(sentences[30:])
    chunks = chunk_document(text, "text/plain", ChunkingConfig(max_tokens, overlap))
    assert len(chunks) > 1
    for c in chunks:
        assert approx_token_count(c.embed_text) <= max_tokens
    joined = " ".join(c.text for c in chunks)
    for s in sentences:
        assert s in joined  # nothing lost at chunk boundaries
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_overlap_repeats_tail_of_previous_chunk() -> None:
    text = " ".join(f"Fact {i} is stated here." for i in range(40))
    chunks = chunk_document(text, "text/plain", ChunkingConfig(40, 12))
    first_tail = chunks[0].text.split("\n")[-1].split(". ")[-1]
    assert first_tail.rstrip(".") in chunks[1].text


def test_giant_word_is_cut_to_fit() -> None:
    chunks = chunk_document("x" * 5000, "text/plain", ChunkingConfig(32, 0), count=lambda s: len(s) // 10 + 1)
    assert len(chunks) > 1 and all(len(c.text) // 10 + 1 <= 32 for c in chunks)


def test_markdown_code_fence_kept() -> None:
    blocks = parse_markdown("# A\n\n```\napt-get install foo\n```\n")
    assert blocks[0].text == "apt-get install foo" and blocks[0].headings == ("A",)


def test_fails_on_bad_config() -> None:
    with pytest.raises(ValueError, match="overlap_tokens"):
        ChunkingConfig(64, 40)


def test_each_piece_is_counted_once_not_each_candidate_join() -> None:
    """Packing costs a join as the sum of its pieces' counts: the counter sees each sentence about
    once (re-counting every candidate join re-tokenized a section once per sentence: quadratic)."""
    sentences = [f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(200)]
    seen: list[str] = []

    def counting(text: str) -> int:
        seen.append(text)
        return approx_token_count(text)

    chunks = chunk_document(" ".join(sentences), "text/plain", ChunkingConfig(64, 8), count=counting)
    assert chunks == chunk_document(" ".join(sentences), "text/plain", ChunkingConfig(64, 8))  # same chunks either way
    assert len(seen) == len(set(seen))  # no text counted twice
    assert len(seen) <= 2 * len(sentences)  # each sentence once, plus a few words for overlaps
