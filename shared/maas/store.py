"""The model store: immutable versions and movable aliases, on a local directory or on S3.

Layout under the store's root (the same on both backends)::

    <name>/versions/<n>/.claim          created exclusively: reserves version n
    <name>/versions/<n>/<file>          the artifact's files, uploaded first
    <name>/versions/<n>/manifest.json   written last, exclusively: the version now exists
    <name>/aliases/<alias>.json         {"version": "<n>", ...}; the only mutable objects

A reader only sees versions that have a manifest, so it never sees half a version; a version
is never written twice (the manifest is created with "if none match", on S3 too).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast
from urllib.parse import urlparse

from maas import artifact
from maas.errors import (
    IntegrityError,
    InvalidModelRef,
    MaasError,
    ModelNotFound,
    StoreError,
    VersionConflict,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DEFAULT_ALIAS = "production"
DEFAULT_STORE = ".maas/store"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_VERSION_RE = re.compile(r"^[1-9][0-9]{0,8}$")

Progress = Callable[[int], None]


class NotFound(Exception):
    """A key does not exist in a backend (internal; the store turns it into ModelNotFound)."""


# ---------------------------------------------------------------------------- references
@dataclass(frozen=True)
class ModelRef:
    """`name`, `name@alias` or `name:version`."""

    name: str
    alias: str | None = None
    version: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        name, alias, version = text, None, None
        if "@" in text:
            name, alias = text.split("@", 1)
        elif ":" in text:
            name, version = text.split(":", 1)
        if not _NAME_RE.match(name):
            raise InvalidModelRef(
                f"invalid model name {name!r}: use letters, digits, '.', '_' and '-' "
                "(at most 128 characters)"
            )
        if alias is not None and not _NAME_RE.match(alias):
            raise InvalidModelRef(f"invalid alias {alias!r} in {text!r}")
        if version is not None and not _VERSION_RE.match(version):
            raise InvalidModelRef(f"invalid version {version!r} in {text!r}: versions are 1, 2, …")
        return cls(name, alias, version)

    def __str__(self) -> str:
        if self.version:
            return f"{self.name}:{self.version}"
        return f"{self.name}@{self.alias}" if self.alias else self.name


def check_name(value: str, what: str = "name") -> str:
    if not _NAME_RE.match(value):
        raise InvalidModelRef(f"invalid {what} {value!r}: use letters, digits, '.', '_' and '-'")
    return value


# ------------------------------------------------------------------------------ backends
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
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            if exclusive:
                try:
                    os.link(tmp, target)
                except FileExistsError as exc:
                    raise VersionConflict(f"{key} already exists") from exc
            else:
                os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def upload(self, key: str, path: Path, progress: Progress | None = None) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".tmp-{uuid.uuid4().hex}")
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)
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
    """An S3 bucket and prefix. botocore honours AWS_ENDPOINT_URL(_S3), so moto server, MinIO
    or any S3-compatible server works. The client is created on first use, from botocore
    itself: importing boto3 and creating its client costs about a third more (boto3 imports
    its transfer manager for every S3 client), and every cold start on an S3 store pays it."""

    def __init__(self, bucket: str, prefix: str = "", client: S3Client | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._client = client

    @property
    def client(self) -> S3Client:
        if self._client is None:
            self._client = cast("S3Client", _botocore_session().create_client("s3"))
        return self._client

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextlib.contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        """S3's errors in the store's terms: a missing key is NotFound, a failed "if none
        match" a VersionConflict, anything else a StoreError naming what failed."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code in ("NoSuchKey", "404", "NotFound"):
                raise NotFound(key) from exc
            if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise VersionConflict(f"{key} already exists") from exc
            raise StoreError(f"cannot {action} {self.uri}/{key}: {exc}") from exc
        except S3UploadFailedError as exc:
            raise StoreError(f"cannot {action} {self.uri}/{key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"cannot reach {self.uri}: {exc}") from exc

    def read(self, key: str) -> bytes:
        with self._errors("read", key):
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            data: bytes = response["Body"].read()
        return data

    def write(self, key: str, data: bytes, *, exclusive: bool = False) -> None:
        extra: dict[str, Any] = {"IfNoneMatch": "*"} if exclusive else {}
        with self._errors("write", key):
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **extra)

    def upload(self, key: str, path: Path, progress: Progress | None = None) -> None:
        from boto3.s3.transfer import S3Transfer

        with self._errors(f"upload {path.name} to", key):
            # the transfer manager: multipart and parallel parts for large files
            transfer = S3Transfer(self.client)
            transfer.upload_file(str(path), self.bucket, self._key(key), callback=progress)

    def download(self, key: str, path: Path) -> None:
        # One GET (the transfer manager's download_file sends a HEAD first): model files are a
        # few MB, and a cold start waits for every request.
        with self._errors("download", key):
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            with open(path, "wb") as handle:
                for chunk in body.iter_chunks(1 << 20):
                    handle.write(chunk)

    def children(self, prefix: str) -> list[str]:
        base = (
            self._key(prefix.rstrip("/")) + "/"
            if prefix
            else (self.prefix + "/" if self.prefix else "")
        )
        names: set[str] = set()
        with self._errors("list", prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base, Delimiter="/"
            )
            for page in pages:
                names.update(
                    p["Prefix"][len(base) :].rstrip("/") for p in page.get("CommonPrefixes", [])
                )
                names.update(o["Key"][len(base) :] for o in page.get("Contents", []))
        return sorted(names)


@functools.cache
def _botocore_session() -> Any:
    """One botocore session per process, as boto3's default session: its clients (the model
    store's, the results sink's) share the parsed service model instead of each loading it."""
    import botocore.session  # imported here: the local store and the CLI's help never pay

    return botocore.session.get_session()


def backend_for(uri: str | Path | None) -> Backend:
    """`s3://bucket/prefix`, `file:///path`, or a path; default `$MAAS_STORE`, then
    `.maas/store` in the current directory."""
    text = str(uri or os.environ.get("MAAS_STORE") or DEFAULT_STORE)
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


# --------------------------------------------------------------------------------- store
@dataclass(frozen=True)
class LocalModel:
    """A verified copy of a version's files on local disk."""

    name: str
    version: str
    path: Path
    manifest: artifact.Manifest


class ModelStore:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @classmethod
    def open(cls, uri: str | Path | None = None) -> ModelStore:
        return cls(backend_for(uri))

    @property
    def uri(self) -> str:
        return self.backend.uri

    # -- reading ------------------------------------------------------------------------
    def models(self) -> list[str]:
        return [name for name in self.backend.children("") if _NAME_RE.match(name)]

    def versions(self, name: str) -> list[str]:
        """Published versions (those with a manifest), oldest first."""
        found = []
        for version in self._numbered(name):
            try:
                self.backend.read(f"{name}/versions/{version}/{artifact.MANIFEST}")
            except NotFound:
                continue  # claimed, still being written (or abandoned)
            found.append(version)
        return found

    def _numbered(self, name: str) -> list[str]:
        return sorted(
            (v for v in self.backend.children(f"{name}/versions") if _VERSION_RE.match(v)), key=int
        )

    def aliases(self, name: str) -> dict[str, str]:
        result = {}
        for entry in self.backend.children(f"{name}/aliases"):
            if entry.endswith(".json"):
                result[entry[: -len(".json")]] = self._alias(name, entry[: -len(".json")])
        return result

    def _alias(self, name: str, alias: str) -> str:
        try:
            pointer = json.loads(self.backend.read(f"{name}/aliases/{alias}.json"))
        except NotFound as exc:
            raise ModelNotFound(f"model {name!r} has no alias {alias!r}") from exc
        return str(pointer["version"])

    def manifest_bytes(self, name: str, version: str) -> bytes:
        try:
            return self.backend.read(f"{name}/versions/{version}/{artifact.MANIFEST}")
        except NotFound as exc:
            if name not in self.models():
                raise ModelNotFound(f"no model named {name!r}") from exc
            raise ModelNotFound(f"model {name!r} has no version {version}") from exc

    def manifest(self, name: str, version: str) -> artifact.Manifest:
        return artifact.parse_manifest(self.manifest_bytes(name, version), f"{name}:{version}")

    def resolve(self, ref: ModelRef | str) -> tuple[str, str]:
        """The (name, version) a reference points at. A bare name means its `production`
        alias when it has one, else its latest version."""
        ref = ModelRef.parse(ref) if isinstance(ref, str) else ref
        if ref.version:
            return ref.name, ref.version
        if ref.alias:
            return ref.name, self._alias(ref.name, ref.alias)
        try:
            return ref.name, self._alias(ref.name, DEFAULT_ALIAS)
        except ModelNotFound:
            versions = self.versions(ref.name)
            if not versions:
                raise ModelNotFound(f"no model named {ref.name!r}") from None
            return ref.name, versions[-1]

    def fetch(
        self,
        ref: ModelRef | str,
        cache_dir: str | Path | None = None,
        files: tuple[str, ...] | None = None,
    ) -> LocalModel:
        """Download a version's files (default: what serving needs, `artifact.serving_files`)
        into a cache keyed by the manifest's sha256, verifying each file's sha256 on the way;
        a complete cached copy is reused as is."""
        name, version = self.resolve(ref)
        raw = self.manifest_bytes(name, version)
        manifest = artifact.parse_manifest(raw, f"{name}:{version}")
        files = files or artifact.serving_files(manifest)
        root = Path(cache_dir or os.environ.get("MAAS_CACHE_DIR") or default_cache_dir())
        target = root / name / artifact.sha256_bytes(raw)
        if (target / ".complete").is_file():
            return LocalModel(name, version, target, manifest)
        for file in files:
            if file not in manifest["files"]:
                raise IntegrityError(f"{name}:{version} lists no {file}")
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".fetch-"))

        def download(file: str) -> None:
            try:
                self.backend.download(f"{name}/versions/{version}/{file}", staging / file)
            except NotFound as exc:
                raise IntegrityError(f"{name}:{version} lacks {file}") from exc
            artifact.verify_file(staging / file, manifest["files"][file]["sha256"])

        from concurrent.futures import ThreadPoolExecutor

        try:
            # the files at once: a cold start waits for the slowest request, not their sum
            with ThreadPoolExecutor(max_workers=min(len(files), 8)) as pool:
                for _ in pool.map(download, files):  # re-raises the first failure
                    pass
            (staging / artifact.MANIFEST).write_bytes(raw)
            (staging / ".complete").touch()
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                staging.rename(target)
            except OSError:  # another process finished first: theirs is as good as ours
                if not (target / ".complete").is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return LocalModel(name, version, target, manifest)

    # -- writing ------------------------------------------------------------------------
    def publish(
        self,
        directory: str | Path,
        name: str,
        alias: str | None = None,
        progress: Callable[[str, int], None] | None = None,
    ) -> str:
        """Publish an artifact directory as the next version of `name`; returns the version.

        The files are uploaded first and the manifest last, so readers never see a partial
        version. The caller verifies the artifact before (see `maas.publishing`)."""
        check_name(name)
        if alias:
            check_name(alias, "alias")
        source = Path(directory)
        manifest = artifact.read_manifest(source)
        artifact.verify_files(source, manifest)
        version = self._claim(name)
        for file in manifest["files"]:
            report = (lambda n, f=file: progress(f, n)) if progress else None
            self.backend.upload(f"{name}/versions/{version}/{file}", source / file, report)
        published = dict(manifest, name=name, version=version, published_at=_now(), store=self.uri)
        self.backend.write(
            f"{name}/versions/{version}/{artifact.MANIFEST}",
            artifact.dumps(published),
            exclusive=True,
        )
        if alias:
            self.promote(name, version, alias)
        return version

    def _claim(self, name: str) -> str:
        for _ in range(100):
            existing = self._numbered(name)
            version = str(int(existing[-1]) + 1 if existing else 1)
            try:
                self.backend.write(
                    f"{name}/versions/{version}/.claim", _now().encode(), exclusive=True
                )
                return version
            except VersionConflict:
                time.sleep(0.01)  # someone else is publishing the same model: take the next
        raise StoreError(f"could not reserve a new version of {name!r}: too much contention")

    def promote(self, name: str, version: str, alias: str) -> None:
        """Point `alias` at an existing version."""
        check_name(alias, "alias")
        self.manifest(name, version)  # refuses an unknown or unpublished version
        pointer = {"version": version, "updated_at": _now()}
        self.backend.write(f"{name}/aliases/{alias}.json", json.dumps(pointer).encode())


def default_cache_dir() -> Path:
    # Lambda can only write to /tmp; elsewhere follow XDG.
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return Path("/tmp/maas-cache")
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "maas"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


__all__ = [
    "DEFAULT_ALIAS",
    "LocalBackend",
    "LocalModel",
    "MaasError",
    "ModelRef",
    "ModelStore",
    "S3Backend",
    "backend_for",
]
