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

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from maas.core import manifest as artifact
from maas.core.manifest import Manifest
from maas.errors import IntegrityError, ModelNotFound, NotFound, StoreError, VersionConflict
from maas.store.backends import DEFAULT_STORE, Backend, backend_for
from maas.store.refs import (
    DEFAULT_ALIAS,
    ModelRef,
    check_name,
    check_version,
    is_name,
    is_version,
)

if TYPE_CHECKING:
    from maas.core.classifier import Classifier

UploadProgress = Callable[[str, int], None]  # (file name, bytes just sent)


@dataclass(frozen=True)
class LocalModel:
    """A verified copy of a version's files on local disk."""

    name: str
    version: str
    path: Path
    manifest: Manifest

    def open(self, num_threads: int = 1) -> Classifier:
        """A classifier of this copy (its files were verified when they were fetched)."""
        from maas.core.classifier import Classifier

        return Classifier(
            self.path, self.manifest, name=self.name, version=self.version, num_threads=num_threads
        )


class ModelStore:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @classmethod
    def open(cls, uri: str | Path | None = None) -> ModelStore:
        """`s3://bucket/prefix`, `file:///path` or a directory (default `.maas/store`)."""
        return cls(backend_for(uri or DEFAULT_STORE))

    @property
    def uri(self) -> str:
        return self.backend.uri

    # -- reading ------------------------------------------------------------------------
    def models(self) -> list[str]:
        return [name for name in self.backend.children("") if is_name(name)]

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
            (v for v in self.backend.children(f"{name}/versions") if is_version(v)), key=int
        )

    def aliases(self, name: str) -> dict[str, str]:
        result = {}
        for entry in self.backend.children(f"{name}/aliases"):
            alias = entry.removesuffix(".json")
            if entry.endswith(".json") and is_name(alias):
                result[alias] = self.alias(name, alias)
        return result

    def alias(self, name: str, alias: str) -> str:
        """The version an alias points at."""
        try:
            pointer = json.loads(self.backend.read(f"{name}/aliases/{alias}.json"))
        except NotFound as exc:
            raise ModelNotFound(f"model {name!r} has no alias {alias!r}") from exc
        version = pointer.get("version") if isinstance(pointer, dict) else None
        if not is_version(version):
            raise StoreError(f"{name}@{alias} in {self.uri} does not point at a version")
        return str(version)

    def manifest_bytes(self, name: str, version: str) -> bytes:
        try:
            return self.backend.read(f"{name}/versions/{version}/{artifact.MANIFEST}")
        except NotFound as exc:
            if name not in self.models():
                raise ModelNotFound(f"no model named {name!r}") from exc
            raise ModelNotFound(f"model {name!r} has no version {version}") from exc

    def manifest(self, name: str, version: str) -> Manifest:
        return Manifest.from_json(self.manifest_bytes(name, version), f"{name}:{version}")

    def resolve(self, ref: ModelRef | str, default_alias: str = DEFAULT_ALIAS) -> tuple[str, str]:
        """The (name, version) a reference points at. A bare name means its `default_alias`
        (`production`) when it has one, else its latest version: the one place that rule is
        written, for the CLI and the functions alike."""
        ref = ModelRef.parse(ref) if isinstance(ref, str) else ref
        if ref.version:
            return ref.name, ref.version
        if ref.alias:
            return ref.name, self.alias(ref.name, ref.alias)
        try:
            return ref.name, self.alias(ref.name, default_alias)
        except ModelNotFound:
            versions = self.versions(ref.name)
            if not versions:
                raise ModelNotFound(f"no model named {ref.name!r}") from None
            return ref.name, versions[-1]

    def fetch(
        self,
        ref: ModelRef | str,
        cache_dir: str | Path,
        files: tuple[str, ...] | None = None,
        *,
        default_alias: str = DEFAULT_ALIAS,
    ) -> LocalModel:
        """Download a version's files (default: what serving needs, `Manifest.serving_files`)
        into a cache keyed by the manifest's sha256, verifying each file's sha256 on the way;
        a complete cached copy is reused as is."""
        name, version = self.resolve(ref, default_alias)
        raw = self.manifest_bytes(name, version)
        manifest = Manifest.from_json(raw, f"{name}:{version}")
        files = files or manifest.serving_files()
        root = Path(cache_dir)
        target = root / name / artifact.sha256_bytes(raw)
        if (target / ".complete").is_file():
            return LocalModel(name, version, target, manifest)
        for file in files:
            if file not in manifest.files:
                raise IntegrityError(f"{name}:{version} lists no {file}")
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".fetch-"))

        def download(file: str) -> None:
            try:
                self.backend.download(f"{name}/versions/{version}/{file}", staging / file)
            except NotFound as exc:
                raise IntegrityError(f"{name}:{version} lacks {file}") from exc
            artifact.verify_file(staging / file, manifest.files[file].sha256)

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
        progress: UploadProgress | None = None,
    ) -> str:
        """Publish an artifact directory as the next version of `name`; returns the version.

        The files are uploaded first and the manifest last, so readers never see a partial
        version. The caller verifies the model before (`maas.store.publishing`)."""
        check_name(name)
        if alias:
            check_name(alias, "alias")
        source = Path(directory)
        manifest = artifact.read_manifest(source)
        artifact.verify_files(source, manifest)
        version = self._claim(name)
        for file in manifest.files:
            report = (lambda n, f=file: progress(f, n)) if progress else None
            self.backend.upload(f"{name}/versions/{version}/{file}", source / file, report)
        published = manifest.updated(
            name=name, version=version, published_at=_now(), store=self.uri
        )
        self.backend.write(
            f"{name}/versions/{version}/{artifact.MANIFEST}", published.to_json(), exclusive=True
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
        check_name(name)
        check_version(version)
        check_name(alias, "alias")
        self.manifest(name, version)  # refuses an unknown or unpublished version
        pointer = {"version": version, "updated_at": _now()}
        self.backend.write(f"{name}/aliases/{alias}.json", json.dumps(pointer).encode())


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
