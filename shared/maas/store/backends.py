"""Where a store keeps its objects: a local directory or an S3 bucket and prefix, behind one
small interface (read, write, upload, download, list). The results sink uses the same two.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast
from urllib.parse import urlparse

from maas import aws
from maas.errors import NotFound, StoreError
from maas.files import atomic_file, write_atomically

DEFAULT_STORE = ".maas/store"

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_s3 import S3Client

    Progress = Callable[[int], None]


class Backend(Protocol):
    uri: str

    def read(self, key: str) -> bytes: ...
    def write(self, key: str, data: bytes, *, exclusive: bool = False) -> None: ...
    def upload(self, key: str, path: Path, progress: Progress | None = None) -> None: ...
    def download(self, key: str, path: Path) -> None: ...
    def children(self, prefix: str) -> list[str]: ...


class LocalBackend:
    """A directory. Writes go to a temporary file and are renamed into place; an exclusive
    write uses link(2), which fails when the target exists."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.uri = self.root.as_uri()

    def _path(self, key: str) -> Path:
        return self.root / key

    def read(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFound(key) from exc

    def write(self, key: str, data: bytes, *, exclusive: bool = False) -> None:
        write_atomically(self._path(key), data, exclusive=exclusive)

    def upload(self, key: str, path: Path, progress: Progress | None = None) -> None:
        with path.open("rb") as source, atomic_file(self._path(key), "wb") as target:
            shutil.copyfileobj(source, target)
        if progress:
            progress(path.stat().st_size)

    def download(self, key: str, path: Path) -> None:
        try:
            shutil.copyfile(self._path(key), path)
        except FileNotFoundError as exc:
            raise NotFound(key) from exc

    def children(self, prefix: str) -> list[str]:
        directory = self._path(prefix)
        if not directory.is_dir():
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
        return f"{self.prefix}/{key}" if self.prefix else key

    def _where(self, key: str) -> str:
        return f"{self.uri}/{key}" if key else self.uri

    def read(self, key: str) -> bytes:
        with aws.errors(f"cannot read {self._where(key)}"):
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            data: bytes = response["Body"].read()
        return data

    def write(self, key: str, data: bytes, *, exclusive: bool = False) -> None:
        conditional: Any = {"IfNoneMatch": "*"} if exclusive else {}
        with aws.errors(f"cannot write {self._where(key)}"):
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **conditional)

    def upload(self, key: str, path: Path, progress: Progress | None = None) -> None:
        from boto3.s3.transfer import S3Transfer

        with aws.errors(f"cannot upload {path.name} to {self._where(key)}"):
            # the transfer manager: multipart and parallel parts for large files
            transfer = S3Transfer(self.client)
            transfer.upload_file(str(path), self.bucket, self._key(key), callback=progress)

    def download(self, key: str, path: Path) -> None:
        # One GET (the transfer manager's download_file sends a HEAD first): model files are a
        # few MB, and a cold start waits for every request.
        with aws.errors(f"cannot download {self._where(key)}"):
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            with open(path, "wb") as handle:
                for chunk in body.iter_chunks(1 << 20):
                    handle.write(chunk)

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


def backend_for(uri: str | Path | None) -> Backend:
    """`s3://bucket/prefix`, `file:///path`, or a path (default `.maas/store`)."""
    text = str(uri or DEFAULT_STORE)
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
