"""Upstream clients. Both raise UpstreamError before the first byte; callers decide fallback."""

from __future__ import annotations


class UpstreamError(Exception):
    """kind: connect | timeout | status | throttled | protocol | bad_request."""

    def __init__(self, kind: str, message: str, status: int | None = None, body: bytes | None = None):
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.body = body
