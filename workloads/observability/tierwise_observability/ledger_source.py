"""Where the cost report reads the router's usage ledger from: the durable store (S3, where the router
ships sealed segments) or local ledger files/directories. Both go through `tierwise_ledger`, the
router's own format library (its one parser: CRC-checked lines, segment keys, dedupe by entry id), so
the report can never drift from what the router writes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tierwise_ledger import LedgerFormatError, LedgerRead, read_local, read_s3

from .costs import InputError


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` → (bucket, prefix)."""
    if not url.startswith("s3://") or not url[5:].split("/", 1)[0]:
        raise InputError(f"{url!r}: expected s3://<bucket>/<prefix> (the router's TIERWISE_ROUTER_LEDGER_S3_BUCKET "
                         "and _PREFIX, e.g. s3://tierwise-prod-123456789012-ledger/ledger/router)")
    bucket, _, prefix = url[5:].partition("/")
    return bucket, prefix.strip("/")


def s3_client(region: str | None = None, endpoint_url: str | None = None) -> Any:
    import boto3

    return boto3.session.Session().client("s3", region_name=region, endpoint_url=endpoint_url)


def read_ledger_source(local: Sequence[Path], s3_urls: Sequence[str], since: dt.datetime, until: dt.datetime, *,
                       client: Any = None) -> tuple[LedgerRead, str]:
    """Every ledger entry from the given places, deduplicated across all of them, and a description of
    the sources for the report's inputs."""
    if not local and not s3_urls:
        raise InputError("no ledger given: pass --ledger-s3 s3://<bucket>/<prefix> (the durable store) or --ledger FILE|DIR")
    out = LedgerRead()
    where = []
    for url in s3_urls:
        bucket, prefix = parse_s3_url(url)
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            got = read_s3(client or s3_client(), bucket, prefix, since, until)
        except (BotoCoreError, ClientError) as e:
            raise InputError(f"{url}: cannot read the ledger ({e})") from None
        out.merge(got)
        where.append(url)
    if local:
        try:
            out.merge(read_local(local))
        except LedgerFormatError as e:
            raise InputError(str(e)) from None
        where += [str(p) for p in local]
    return out, ", ".join(where)

