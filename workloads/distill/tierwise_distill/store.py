"""Object stores under the adapter registry: a local directory or an S3 prefix, same contract.

Two write primitives carry all of the registry's guarantees:

- ``put_new(key, data)`` creates an object only if it does not exist (immutable versions).
  Local: write a temp file, then ``os.link`` it to the final name (fails if it exists).
  S3: ``PutObject`` with ``If-None-Match: *`` (S3 conditional writes) → 412 if it exists.
- ``put_cas(key, data, expect)`` replaces an object only if its current ETag is ``expect``
  (``None`` = must not exist): the atomic pointer move behind promote/rollback.
  Local: an ``flock`` on a side lock file, compare, then ``os.replace``. S3: ``If-Match: <etag>``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse


class StoreError(Exception):
    pass


class AlreadyExists(StoreError):
    pass


class ConflictError(StoreError):
    """A compare-and-swap lost: someone else moved the object since it was read."""


class Store(Protocol):
    url: str

    def get(self, key: str) -> tuple[bytes, str] | None: ...
    def put_new(self, key: str, data: bytes) -> None: ...
    def put(self, key: str, data: bytes) -> None: ...
    def put_cas(self, key: str, data: bytes, expect: str | None) -> str: ...
    def list(self, prefix: str) -> list[str]: ...
    def download(self, key: str, dest: Path) -> None: ...


def _etag(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise StoreError(f"invalid object key {key!r}")
    return key


class _Downloads:
    """``download`` on top of ``get``: the same for every store."""

    def get(self, key: str) -> tuple[bytes, str] | None:
        raise NotImplementedError

    def download(self, key: str, dest: Path) -> None:
        got = self.get(key)
        if got is None:
            raise StoreError(f"missing object {key}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(got[0])


class LocalStore(_Downloads):
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.url = f"file://{self.root}"

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def get(self, key: str) -> tuple[bytes, str] | None:
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        return data, _etag(data)

    def _tmp(self, p: Path, data: bytes) -> str:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return tmp

    def _fsync_dir(self, d: Path) -> None:
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def put_new(self, key: str, data: bytes) -> None:
        p = self._path(key)
        tmp = self._tmp(p, data)
        try:
            os.link(tmp, p)  # atomic, and fails if p exists
        except FileExistsError:
            raise AlreadyExists(key) from None
        finally:
            os.unlink(tmp)
        self._fsync_dir(p.parent)

    def put(self, key: str, data: bytes) -> None:
        p = self._path(key)
        os.replace(self._tmp(p, data), p)
        self._fsync_dir(p.parent)

    def put_cas(self, key: str, data: bytes, expect: str | None) -> str:
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p.parent / f".{p.name}.lock", "a+b") as lk:
            fcntl.flock(lk, fcntl.LOCK_EX)
            cur = self.get(key)
            cur_tag = cur[1] if cur else None
            if cur_tag != expect:
                raise ConflictError(f"{key}: expected etag {expect}, found {cur_tag}")
            os.replace(self._tmp(p, data), p)
            self._fsync_dir(p.parent)
        return _etag(data)

    def list(self, prefix: str) -> list[str]:
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return []
        out = []
        for dirpath, _dirs, files in os.walk(base):
            for f in files:
                if f.startswith("."):
                    continue
                out.append(str(Path(dirpath, f).relative_to(self.root)))
        return sorted(out)


class S3Store(_Downloads):
    """The same contract on S3 (the serving stack's versioned bucket). ``client`` is a boto3 S3
    client; tests pass one wired to botocore's Stubber or to a local S3 server."""

    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("s3")
        self.s3 = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")

    def _k(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @staticmethod
    def _code(e: Exception) -> str:
        return str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))

    def get(self, key: str) -> tuple[bytes, str] | None:
        try:
            r = self.s3.get_object(Bucket=self.bucket, Key=self._k(key))
        except Exception as e:  # botocore.exceptions.ClientError, without importing botocore at top
            if self._code(e) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        return r["Body"].read(), r["ETag"].strip('"')

    def put_new(self, key: str, data: bytes) -> None:
        try:
            self.s3.put_object(Bucket=self.bucket, Key=self._k(key), Body=data, IfNoneMatch="*")
        except Exception as e:
            if self._code(e) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise AlreadyExists(key) from None
            raise

    def put(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=self._k(key), Body=data)

    def put_cas(self, key: str, data: bytes, expect: str | None) -> str:
        cond = {"IfNoneMatch": "*"} if expect is None else {"IfMatch": f'"{expect}"'}
        try:
            r = self.s3.put_object(Bucket=self.bucket, Key=self._k(key), Body=data, **cond)
        except Exception as e:
            if self._code(e) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise ConflictError(f"{key}: moved since read (expected etag {expect})") from None
            raise
        return r["ETag"].strip('"')

    def list(self, prefix: str) -> list[str]:
        full = self._k(prefix) if prefix else self.prefix
        if full and not full.endswith("/"):
            full += "/"
        out: list[str] = []
        token = None
        while True:
            kw: dict[str, Any] = {"Bucket": self.bucket, "Prefix": full}
            if token:
                kw["ContinuationToken"] = token
            r = self.s3.list_objects_v2(**kw)
            strip = len(self.prefix) + 1 if self.prefix else 0
            out.extend(o["Key"][strip:] for o in r.get("Contents", []))
            if not r.get("IsTruncated"):
                break
            token = r["NextContinuationToken"]
        return sorted(out)


def open_store(url: str, s3_client: Any = None) -> LocalStore | S3Store:
    """``file:///abs/path``, a plain path, or ``s3://bucket/prefix``."""
    u = urlparse(url)
    if u.scheme == "s3":
        if not u.netloc:
            raise StoreError(f"registry URL {url!r} has no bucket")
        return S3Store(u.netloc, u.path.lstrip("/"), client=s3_client)
    if u.scheme in ("file", ""):
        return LocalStore(u.path if u.scheme == "file" else url)
    raise StoreError(f"unsupported registry URL {url!r}: use a path, file:///path or s3://bucket/prefix")


def iter_files(d: Path) -> Iterator[Path]:
    for p in sorted(d.rglob("*")):
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(d).parts):
            yield p
