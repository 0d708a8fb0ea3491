"""Where a store keeps its objects: a local directory or an S3 bucket and prefix, behind one
small interface (read, write, upload, download, list). The results sink uses the same two.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast
from urllib.parse import urlparse

from maas import aws
from maas.errors import IntegrityError, NotFound, StoreError, VersionConflict
from maas.files import atomic_file, write_atomically

DEFAULT_STORE = ".maas/store"

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_s3 import S3Client

    Progress = Callable[[int], None]


# Objects read whole into memory (manifests, signatures, aliases) are small; a larger one is a
# store that was tampered with, refused before it is read.
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024


class Backend(Protocol):
    """Keys are '/'-separated, relative, without empty, '.' or '..' segments."""

    uri: str

    def read(self, key: str, max_bytes: int = MAX_DOCUMENT_BYTES) -> bytes: ...
    def read_tagged(self, key: str, max_bytes: int) -> tuple[bytes, str]:
        """The object and a tag of this content (S3's ETag), for `replace`."""
        ...

    def write(self, key: str, data: bytes, *, exclusive: bool = False) -> None: ...
    def replace(self, key: str, data: bytes, *, tag: str | None) -> None:
        """Write only if the object still has `tag` (None: only if it does not exist);
        VersionConflict otherwise: compare-and-swap."""
        ...

    def upload(
        self, key: str, path: Path, progress: Progress | None = None, *, exclusive: bool = False
    ) -> None: ...
    def download(self, key: str, path: Path, max_bytes: int) -> None: ...
    def children(self, prefix: str) -> list[str]: ...
    def delete(self, key: str) -> None: ...


def check_key(key: str) -> str:
    """A key that cannot leave the store: no absolute path, no '..', no empty segment."""
    parts = key.split("/")
    if not key or any(part in ("", ".", "..") or "\0" in part for part in parts):
        raise StoreError(f"refusing the store key {key[:80]!r}: it is not a plain relative key")
    return key


def too_large(key: str, limit: int) -> IntegrityError:
    return IntegrityError(f"{key} is larger than {limit} bytes; refusing to read it", file=key)


class LocalBackend:
    """A directory. Writes go to a temporary file and are renamed into place; an exclusive
    write uses link(2), which fails when the target exists. Reads follow no link that leads
    out of the directory and open only regular files (never a device, a FIFO, a socket)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.uri = self.root.as_uri()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _open(self, key: str) -> tuple[int, int]:
        """A read-only descriptor of the key's regular file inside the store, and its size."""
        path = self._path(key)
        real = Path(os.path.realpath(path))
        if real != self.root and self.root not in real.parents:
            raise IntegrityError(f"{key} leads out of the store ({real}); refusing it", file=key)
        try:
            descriptor = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFound(key) from exc
        except OSError as exc:
            raise StoreError(f"cannot read {self.uri}/{key}: {exc.strerror}") from None
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            os.close(descriptor)
            raise IntegrityError(f"{key} is not a regular file; refusing it", file=key)
        return descriptor, info.st_size

    def read(self, key: str, max_bytes: int = MAX_DOCUMENT_BYTES) -> bytes:
        descriptor, size = self._open(key)
        with os.fdopen(descriptor, "rb") as handle:
            if size > max_bytes:
                raise too_large(key, max_bytes)
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise too_large(key, max_bytes)
        return data

    def read_tagged(self, key: str, max_bytes: int) -> tuple[bytes, str]:
        data = self.read(key, max_bytes)
        return data, hashlib.sha256(data).hexdigest()

    def write(self, key: str, data: bytes, *, exclusive: bool = False) -> None:
        write_atomically(self._path(key), data, exclusive=exclusive)

    def replace(self, key: str, data: bytes, *, tag: str | None) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # a lock file beside the object serializes compare-and-swap between processes
        with open(path.with_name(f".{path.name}.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                current: str | None = self.read_tagged(key, MAX_DOCUMENT_BYTES)[1]
            except NotFound:
                current = None
            if current != tag:
                raise VersionConflict(f"{key} changed since it was read")
            write_atomically(path, data)

    def upload(
        self, key: str, path: Path, progress: Progress | None = None, *, exclusive: bool = False
    ) -> None:
        with (
            path.open("rb") as source,
            atomic_file(self._path(key), "wb", exclusive=exclusive) as target,
        ):
            shutil.copyfileobj(source, target)
        if progress:
            progress(path.stat().st_size)

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError as exc:
            raise NotFound(key) from exc
        except OSError as exc:
            raise StoreError(f"cannot delete {self.uri}/{key}: {exc.strerror}") from None

    def download(self, key: str, path: Path, max_bytes: int) -> None:
        descriptor, size = self._open(key)
        with os.fdopen(descriptor, "rb") as source:
            if size > max_bytes:
                raise too_large(key, max_bytes)
            _copy_at_most(source, path, max_bytes, key)

    def children(self, prefix: str) -> list[str]:
        directory = self._path(prefix) if prefix else self.root
        if directory.is_symlink() or not directory.is_dir():
            return []
        return sorted(p.name for p in directory.iterdir() if not p.name.startswith(".tmp-"))


class S3Backend:
    """An S3 bucket and prefix. The client is created on first use, from botocore itself:
    importing boto3 and creating its client costs about a third more (boto3 imports its
    transfer manager for every S3 client), and every cold start on an S3 store pays it."""

    def __init__(self, bucket: str, prefix: str = "", client: S3Client | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._client = client

    @property
    def client(self) -> S3Client:
        if self._client is None:
            self._client = cast("S3Client", aws.client("s3"))
        return self._client

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _where(self, key: str) -> str:
        return f"{self.uri}/{key}" if key else self.uri

    def read(self, key: str, max_bytes: int = MAX_DOCUMENT_BYTES) -> bytes:
        return self.read_tagged(key, max_bytes)[0]

    def read_tagged(self, key: str, max_bytes: int) -> tuple[bytes, str]:
        with aws.errors(f"cannot read {self._where(key)}"):
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            if int(response.get("ContentLength", 0)) > max_bytes:
                response["Body"].close()
                raise too_large(key, max_bytes)
            data: bytes = response["Body"].read(max_bytes + 1)
        if len(data) > max_bytes:
            raise too_large(key, max_bytes)
        return data, str(response.get("ETag", ""))

    def replace(self, key: str, data: bytes, *, tag: str | None) -> None:
        conditional: Any = {"IfNoneMatch": "*"} if tag is None else {"IfMatch": tag}
        with aws.errors(f"cannot write {self._where(key)}"):
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **conditional)

    def write(self, key: str, data: bytes, *, exclusive: bool = False) -> None:
        conditional: Any = {"IfNoneMatch": "*"} if exclusive else {}
        with aws.errors(f"cannot write {self._where(key)}"):
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **conditional)

    def upload(
        self, key: str, path: Path, progress: Progress | None = None, *, exclusive: bool = False
    ) -> None:
        where = f"cannot upload {path.name} to {self._where(key)}"
        if exclusive:
            # Write-once: one PUT with If-None-Match (the transfer manager cannot send it, and
            # the model bucket's policy refuses version objects without it). Model files are
            # a few MB; a single PUT takes up to 5 GB.
            with aws.errors(where), path.open("rb") as body:
                self.client.put_object(
                    Bucket=self.bucket, Key=self._key(key), Body=body, IfNoneMatch="*"
                )
            if progress:
                progress(path.stat().st_size)
            return
        from boto3.s3.transfer import S3Transfer

        with aws.errors(where):
            # the transfer manager: multipart and parallel parts for large files
            transfer = S3Transfer(self.client)
            transfer.upload_file(str(path), self.bucket, self._key(key), callback=progress)

    def download(self, key: str, path: Path, max_bytes: int) -> None:
        # One GET (the transfer manager's download_file sends a HEAD first): model files are a
        # few MB, and a cold start waits for every request.
        with aws.errors(f"cannot download {self._where(key)}"):
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            if int(response.get("ContentLength", 0)) > max_bytes:
                response["Body"].close()
                raise too_large(key, max_bytes)
            _copy_at_most(response["Body"], path, max_bytes, key)

    def delete(self, key: str) -> None:
        with aws.errors(f"cannot delete {self._where(key)}"):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def children(self, prefix: str) -> list[str]:
        if prefix:
            base = self._key(prefix.rstrip("/")) + "/"
        else:
            base = self.prefix + "/" if self.prefix else ""
        names: set[str] = set()
        with aws.errors(f"cannot list {self._where(prefix)}"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base, Delimiter="/"
            )
            for page in pages:
                names.update(
                    p["Prefix"][len(base) :].rstrip("/") for p in page.get("CommonPrefixes", [])
                )
                names.update(o["Key"][len(base) :] for o in page.get("Contents", []))
        return sorted(names)


def _copy_at_most(source: Any, path: Path, max_bytes: int, key: str) -> None:
    """Copy a stream to a file, refusing it once it is longer than `max_bytes`."""
    written = 0
    with open(path, "wb") as target:
        while chunk := source.read(1 << 20):
            written += len(chunk)
            if written > max_bytes:
                raise too_large(key, max_bytes)
            target.write(chunk)


def backend_for(uri: str | Path | None) -> Backend:
    """`s3://bucket/prefix`, `file:///path`, or a path (default `.maas/store`)."""
    text = str(uri or DEFAULT_STORE)
    lower = text.lower()
    for scheme in ("s3", "file"):
        if lower.startswith(f"{scheme}://"):
            text = scheme + text[len(scheme) :]  # S3://bucket is s3://bucket
        elif lower.startswith((f"{scheme}:", f"{scheme}/")):
            rest = text[len(scheme) :].lstrip(":/")
            meant = f"file:///{rest}" if scheme == "file" else f"s3://{rest}"
            folder = (
                f" (for a folder named {scheme}, write ./{text})"
                if text[len(scheme)] == "/"
                else ""
            )
            raise StoreError(f"{text!r} is not a store URI: did you mean {meant}?{folder}")
    if text.startswith("s3://"):
        parsed = urlparse(text)
        if not parsed.netloc:
            raise StoreError(f"{text!r} names no bucket: use s3://BUCKET/PREFIX")
        return S3Backend(parsed.netloc, parsed.path)
    if text.startswith("file://"):
        return LocalBackend(urlparse(text).path)
    if "://" in text:
        raise StoreError(f"unsupported store {text!r}: use a directory, file:// or s3://")
    return LocalBackend(text)
