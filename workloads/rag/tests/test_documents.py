from __future__ import annotations

import pytest

from tierwise_rag.documents import DocumentError, RawDocument, validate


def _code(raw: RawDocument, max_bytes: int = 10_000) -> str:
    with pytest.raises(DocumentError) as exc:
        validate(raw, max_bytes=max_bytes)
    return exc.value.code


def test_good_documents_hash_is_stable_and_content_sensitive() -> None:
    a = validate(RawDocument("a", "hello\r\nworld"), max_bytes=100)
    b = validate(RawDocument("b", "hello\nworld"), max_bytes=100)
    c = validate(RawDocument("c", "hello\nworld!"), max_bytes=100)
    assert a.content_hash == b.content_hash != c.content_hash


def test_declared_encoding_is_used() -> None:
    doc = validate(RawDocument("a", "café".encode("latin-1"), encoding="latin-1"), max_bytes=100)
    assert doc.text == "café"


@pytest.mark.parametrize(
    "raw,code",
    [
        (RawDocument("e", "   \n\t "), "empty_document"),
        (RawDocument("e", b""), "empty_document"),
        (RawDocument("b", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "binary_content"),
        (RawDocument("b", "".join(chr(i % 8 + 1) for i in range(200))), "binary_content"),
        (RawDocument("w", "café".encode("latin-1")), "invalid_encoding"),
        (RawDocument("w", b"ok", encoding="no-such-codec"), "invalid_encoding"),
        (RawDocument("h", "x" * 20_000), "document_too_large"),
        (RawDocument("h", b"x" * 20_000), "document_too_large"),
        (RawDocument("t", "text", content_type="application/pdf"), "unsupported_content_type"),
        (RawDocument(" lead", "text"), "invalid_document_id"),
    ],
)
def test_bad_documents_get_specific_codes(raw: RawDocument, code: str) -> None:
    assert _code(raw) == code


def test_encoding_error_names_offset() -> None:
    with pytest.raises(DocumentError, match="offset 3"):
        validate(RawDocument("w", b"caf\xe9 au lait"), max_bytes=100)
