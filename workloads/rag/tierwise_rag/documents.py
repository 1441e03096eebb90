"""Validation of incoming documents: each bad document gets its own clear error, never the batch's.

Checks, in order: id, content type, size (bytes on the wire, before decoding), binary content
(NUL bytes or a high share of control characters), encoding (strict decode with the declared
charset, the offset of the first bad byte in the message), emptiness (after stripping markup).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from .chunking import PARSERS

_ID_RE = re.compile(r"^[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]{0,1023}$")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_EXTENSION_TYPES = {
    ".txt": "text/plain", ".text": "text/plain", ".md": "text/markdown", ".markdown": "text/markdown",
    ".html": "text/html", ".htm": "text/html",
}

MetadataValue = str | int | float | bool | list[str] | list[int]


class DocumentError(Exception):
    """A per-document problem. ``code`` is stable for clients; ``message`` says what to fix."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class RawDocument:
    """A document as it arrives: text, or bytes with a declared encoding."""

    id: str
    content: str | bytes
    content_type: str = "text/plain"
    encoding: str = "utf-8"
    metadata: dict[str, Any] = field(default_factory=dict)
    source_version: str | None = None


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    text: str
    content_type: str
    content_hash: str  # sha256 of the normalized text, content type and metadata
    metadata: dict[str, Any]
    source_version: str | None


def content_type_for_path(path: str) -> str | None:
    lower = path.lower()
    for ext, ctype in _EXTENSION_TYPES.items():
        if lower.endswith(ext):
            return ctype
    return None


def decode_base64(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DocumentError("invalid_base64", f"content_base64 is not valid base64: {exc}") from None


def validate(raw: RawDocument, *, max_bytes: int) -> Document:
    if not isinstance(raw.id, str) or not _ID_RE.match(raw.id):
        raise DocumentError(
            "invalid_document_id",
            "document id must be 1-1024 printable characters, not starting with whitespace",
        )
    ctype = raw.content_type.split(";")[0].strip().lower()
    if ctype not in PARSERS:
        raise DocumentError("unsupported_content_type", f"content_type {raw.content_type!r} is not one of {sorted(PARSERS)}")

    if isinstance(raw.content, bytes):
        size = len(raw.content)
        if size > max_bytes:
            raise DocumentError("document_too_large", f"document is {size} bytes; the limit is {max_bytes} bytes")
        if b"\x00" in raw.content[:65536]:
            raise DocumentError("binary_content", "document contains NUL bytes: binary files are not accepted, send text, Markdown or HTML")
        try:
            codecs.lookup(raw.encoding)
        except LookupError:
            raise DocumentError("invalid_encoding", f"unknown encoding {raw.encoding!r}") from None
        try:
            text = raw.content.decode(raw.encoding)
        except UnicodeDecodeError as exc:
            raise DocumentError(
                "invalid_encoding",
                f"document is not valid {raw.encoding}: byte 0x{raw.content[exc.start]:02x} at offset {exc.start} "
                f"({exc.reason}); declare the right encoding",
            ) from None
    else:
        text = raw.content
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            raise DocumentError("document_too_large", f"document is {size} bytes; the limit is {max_bytes} bytes")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise DocumentError("invalid_encoding", "document text contains lone surrogates; it was decoded with the wrong encoding") from None

    if text.startswith("\ufeff"):
        text = text[1:]
    sample = text[:65536]
    if "\x00" in sample:
        raise DocumentError("binary_content", "document contains NUL characters: binary files are not accepted")
    if sample and len(_CONTROL_RE.findall(sample)) / len(sample) > 0.05:
        raise DocumentError("binary_content", "more than 5% of the document are control characters: it looks binary")
    if "\ufffd" in sample and sample.count("\ufffd") / max(1, len(sample)) > 0.01:
        raise DocumentError("invalid_encoding", "document is full of U+FFFD replacement characters: it was decoded with the wrong encoding")
    if not text.strip():
        raise DocumentError("empty_document", "document has no text")

    text = text.replace("\r\n", "\n")
    digest = hashlib.sha256()
    for part in (ctype, text, repr(sorted(raw.metadata.items()))):
        digest.update(part.encode("utf-8"))
        digest.update(b"\x1f")
    return Document(raw.id, text, ctype, digest.hexdigest(), dict(raw.metadata), raw.source_version)
