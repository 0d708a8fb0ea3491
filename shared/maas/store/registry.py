"""The model store: immutable versions and movable aliases, on a local directory or on S3.

Layout under the store's root (the same on both backends)::

    <name>/versions/<n>/.claim          created exclusively: reserves version n
    <name>/versions/<n>/<file>          the artifact's files, uploaded first, write-once
    <name>/versions/<n>/manifest.sig    the signature of the manifest (maas.store.signing)
    <name>/versions/<n>/manifest.json   written last, exclusively: the version now exists
    <name>/aliases/<alias>.json         {"version": "<n>", "seq": <k>, ...}; the only mutable
                                        objects, each change a compare-and-swap
    <name>/history/<alias>/<k>.json     change k of the alias (who, when, from, to, why),
                                        written once, after the pointer change it records

A reader only sees versions that have a manifest, so it never sees half a version; no object
of a version is ever written twice (each is created with "if none match", on S3 too). A store
opened with a key signs what it publishes and refuses to fetch what does not verify.
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
from typing import TYPE_CHECKING, Any

from maas.core import jsontext
from maas.core import manifest as artifact
from maas.core.manifest import Manifest
from maas.errors import (
    IntegrityError,
    InvalidInput,
    MaasError,
    ModelNotFound,
    NotFound,
    StoreError,
    VersionConflict,
)
from maas.store import signing
from maas.store.backends import DEFAULT_STORE, Backend, backend_for
from maas.store.refs import (
    DEFAULT_ALIAS,
    ModelRef,
    check_name,
    check_version,
    is_name,
    is_version,
    similar,
)
from maas.store.routing import Route, Split

if TYPE_CHECKING:
    from maas.core.classifier import Classifier

UploadProgress = Callable[[str, int], None]  # (file name, bytes just sent)


@dataclass(frozen=True)
class AliasChange:
    """One recorded change of an alias (`<name>/history/<alias>/<seq>.json`)."""

    seq: int
    alias: str
    action: str  # promote, publish, rollback, delete
    before: str | None  # the version it pointed at before (None: it did not exist)
    after: str | None  # the version it points at after (None: deleted)
    at: str
    by: str
    reason: str | None = None
    # the splits after the change, a guarded promote's numbers
    details: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "alias": self.alias,
            "action": self.action,
            "from": self.before,
            "to": self.after,
            "at": self.at,
            "by": self.by,
            "reason": self.reason,
            "details": self.details,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> AliasChange:
        def text(key: str) -> str | None:
            value = doc.get(key)
            return None if value is None else str(value)

        seq = doc.get("seq")
        return cls(
            seq=seq if isinstance(seq, int) else 0,
            alias=str(doc.get("alias", "")),
            action=str(doc.get("action", "")),
            before=text("from"),
            after=text("to"),
            at=str(doc.get("at", "")),
            by=str(doc.get("by", "")),
            reason=text("reason"),
            details=details if isinstance(details := doc.get("details"), dict) else None,
        )


class Keep:
    """`promote(canary=KEEP)`: leave the alias's split as it is."""


KEEP = Keep()


def default_actor() -> str:
    """Who is changing an alias, when no one says: user@host."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


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
    def __init__(
        self, backend: Backend, signer: signing.Signer | None = None, actor: str | None = None
    ) -> None:
        self.backend = backend
        self.signer = signer
        self.actor = actor or default_actor()  # who alias changes are recorded as made by

    @classmethod
    def open(
        cls,
        uri: str | Path | None = None,
        signer: signing.Signer | None = None,
        actor: str | None = None,
    ) -> ModelStore:
        """`s3://bucket/prefix`, `file:///path` or a directory (default `.maas/store`). With
        a signer, publish signs each version and fetch verifies it. `actor`: who alias
        changes are recorded as made by (default user@host)."""
        return cls(backend_for(uri or DEFAULT_STORE), signer, actor)

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
                version, _ = self._pointer(name, alias)
                result[alias] = version or "unreadable"
        return result

    def alias(self, name: str, alias: str) -> str:
        """The version an alias points at."""
        version, _ = self._pointer(name, alias)
        if version is None:
            raise StoreError(f"{name}@{alias} in {self.uri} does not point at a version")
        return version

    def _not_found(self, what: str, wanted: str, known: list[str]) -> ModelNotFound:
        """'no model named X', with the closest names the store has."""
        close = similar(wanted, known)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        return ModelNotFound(f"{what}{hint}", store=self.uri)

    def require(self, name: str) -> None:
        """ModelNotFound (naming this store and the closest names in it) unless it has `name`."""
        if name not in self.models():
            raise self._no_model(name)

    def _no_model(self, name: str) -> ModelNotFound:
        return self._not_found(f"no model named {name!r}", name, self.models())

    def _pointer(self, name: str, alias: str) -> tuple[str | None, str]:
        """An alias's version (None: the pointer is unreadable) and the pointer's tag (what a
        conditional update compares)."""
        version, tag, _, _ = self._read_pointer(name, alias)
        return version, tag

    def route(self, name: str, alias: str) -> Route:
        """Where an alias sends requests: its version, and its canary and shadow if any."""
        version, _, _, pointer = self._read_pointer(name, alias)
        if version is None:
            raise StoreError(f"{name}@{alias} in {self.uri} does not point at a version")
        return Route.from_pointer(version, pointer)

    def _read_pointer(
        self, name: str, alias: str
    ) -> tuple[str | None, str, int | None, dict[str, Any]]:
        """`_pointer`, the number of the last recorded change (None: not recorded) and the
        whole pointer document."""
        check_name(name)
        check_name(alias, "alias")
        try:
            raw, tag = self.backend.read_tagged(f"{name}/aliases/{alias}.json", ALIAS_BYTES)
        except NotFound:
            if name not in self.models():
                raise self._no_model(name) from None
            entries = self.backend.children(f"{name}/aliases")
            known = [a[:-5] for a in entries if a.endswith(".json") and is_name(a[:-5])]
            raise self._not_found(f"model {name!r} has no alias {alias!r}", alias, known) from None
        try:
            pointer = jsontext.loads(raw, f"{name}@{alias}")
        except MaasError:
            pointer = None
        doc: dict[str, Any] = pointer if isinstance(pointer, dict) else {}
        version, seq = doc.get("version"), doc.get("seq")
        return (
            (str(version) if is_version(version) else None),
            tag,
            seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
            doc,
        )

    def manifest_bytes(self, name: str, version: str) -> bytes:
        check_name(name)
        check_version(version)
        try:
            return self.backend.read(f"{name}/versions/{version}/{artifact.MANIFEST}")
        except NotFound:
            if name not in self.models():
                raise self._no_model(name) from None
            versions = self.versions(name)
            listed = f" (it has {', '.join(versions)})" if versions else ""
            raise ModelNotFound(
                f"model {name!r} has no version {version}{listed}", store=self.uri
            ) from None

    def manifest(self, name: str, version: str) -> Manifest:
        return Manifest.from_json(self.manifest_bytes(name, version), f"{name}:{version}")

    def verified_manifest(self, name: str, version: str) -> tuple[bytes, Manifest]:
        """A version's manifest, its signature checked first when the store has a signer
        (IntegrityError when it does not hold); the manifest's bytes come with it."""
        raw = self.manifest_bytes(name, version)
        if self.signer is not None:
            signing.verify_signature(
                self.signer, self._signature(name, version), name, version, raw
            )
        return raw, Manifest.from_json(raw, f"{name}:{version}")

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
                raise self._no_model(ref.name) from None
            return ref.name, versions[-1]

    def resolve_route(
        self, ref: ModelRef | str, default_alias: str = DEFAULT_ALIAS
    ) -> tuple[str, Route, str | None]:
        """`resolve`, with the alias's whole route (canary, shadow) and the alias it came
        from (None: a version, or a bare name without that alias: its latest version)."""
        ref = ModelRef.parse(ref) if isinstance(ref, str) else ref
        if ref.version:
            return ref.name, Route(ref.version), None
        if ref.alias:
            return ref.name, self.route(ref.name, ref.alias), ref.alias
        try:
            return ref.name, self.route(ref.name, default_alias), default_alias
        except ModelNotFound:
            versions = self.versions(ref.name)
            if not versions:
                raise self._no_model(ref.name) from None
            return ref.name, Route(versions[-1]), None

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
        raw, manifest = self.verified_manifest(name, version)
        files = files or manifest.serving_files()
        root = Path(cache_dir)
        target = root / name / artifact.sha256_bytes(raw)
        if (target / ".complete").is_file():
            return LocalModel(name, version, target, manifest)
        for file in files:
            if file not in manifest.files or not _plain_file_name(file):
                raise IntegrityError(f"{name}:{version} lists no {file}")
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".fetch-"))

        def download(file: str) -> None:
            entry = manifest.files[file]
            key = f"{name}/versions/{version}/{file}"
            try:
                self.backend.download(key, staging / file, max_bytes=entry.bytes)
            except NotFound as exc:
                raise IntegrityError(f"{name}:{version} lacks {file}") from exc
            artifact.verify_file(staging / file, entry.sha256)

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
        for file in manifest.files:
            if not _plain_file_name(file):
                raise IntegrityError(f"{source}: the manifest lists {file!r}, not a file name")
        version = self._claim(name)
        prefix = f"{name}/versions/{version}"
        for file in manifest.files:
            report = (lambda n, f=file: progress(f, n)) if progress else None
            self.backend.upload(f"{prefix}/{file}", source / file, report, exclusive=True)
        published = manifest.updated(
            name=name, version=version, published_at=_now(), store=self.uri
        )
        document = published.to_json()
        if self.signer is not None:
            statement = signing.Statement(name, version, artifact.sha256_bytes(document))
            signature = signing.signature_document(self.signer, statement)
            self.backend.write(f"{prefix}/{signing.SIGNATURE}", signature, exclusive=True)
        self.backend.write(f"{prefix}/{artifact.MANIFEST}", document, exclusive=True)
        if alias:
            self.promote(name, version, alias, only_forward=True, action="publish")
        return version

    def _signature(self, name: str, version: str) -> bytes | None:
        try:
            return self.backend.read(f"{name}/versions/{version}/{signing.SIGNATURE}", 64 * 1024)
        except NotFound:
            return None

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

    def promote(
        self,
        name: str,
        version: str,
        alias: str,
        *,
        only_forward: bool = False,
        action: str = "promote",
        reason: str | None = None,
        canary: Split | Keep | None = None,
        shadow: Split | Keep | None = None,
        details: dict[str, Any] | None = None,
    ) -> str | None:
        """Point `alias` at an existing version; returns the version it pointed at before.

        The pointer is replaced only if it still is what was read (compare-and-swap, "if
        match" on S3): of two promoters, neither loses the other's update unseen; the one
        that lost reads the new pointer and tries again. `only_forward` (what publish uses):
        leave an alias that already points at a newer version, so concurrent publishes end
        with the alias on the newest one.

        Every change is recorded in the alias's history (`history`): the pointer carries the
        number of its change, so two promoters can never record the same one.

        `canary` / `shadow`: the alias's splits after the change (None: none; KEEP: as they
        are). A plain promote ends a canary and a shadow."""
        check_name(name)
        check_version(version)
        check_name(alias, "alias")
        self.manifest(name, version)  # refuses an unknown or unpublished version
        for split in (canary, shadow):
            if isinstance(split, Split):
                if split.version == version:
                    raise InvalidInput(f"{name}@{alias}: the split names its own version {version}")
                self.manifest(name, split.version)
        key = f"{name}/aliases/{alias}.json"
        for _ in range(100):
            before: str | None
            tag: str | None
            current: dict[str, Any]
            try:
                before, tag, seq, current = self._read_pointer(name, alias)
            except ModelNotFound:
                before, tag, seq, current = None, None, None, {}
            if only_forward and before is not None and int(before) >= int(version):
                return before
            number = (seq if seq is not None else self._last_change(name, alias)) + 1
            at = _now()
            old = Route.from_pointer(before or version, current)
            route = Route(
                version,
                old.canary if isinstance(canary, Keep) else canary,
                old.shadow if isinstance(shadow, Keep) else shadow,
            )
            doc = route.to_pointer() | {"updated_at": at, "seq": number}
            pointer = json.dumps(doc).encode()
            try:
                self.backend.replace(key, pointer, tag=tag)
            except VersionConflict:
                time.sleep(0.01)  # someone else moved it meanwhile: read it again
                continue
            recorded = dict(details or {})
            if route.canary or old.canary:
                recorded["canary"] = route.canary.to_dict() if route.canary else None
            if route.shadow or old.shadow:
                recorded["shadow"] = route.shadow.to_dict() if route.shadow else None
            self._record(
                name,
                AliasChange(
                    number, alias, action, before, version, at, self.actor, reason, recorded or None
                ),
            )
            return before
        raise StoreError(f"could not move {name}@{alias}: too much contention")

    def delete_alias(self, name: str, alias: str, reason: str | None = None) -> str:
        """Remove an alias; returns the version it pointed at. A bare name then means the
        default alias, or the latest version. The deletion is recorded in its history."""
        version, _, seq, _ = self._read_pointer(name, alias)
        if version is None:
            raise StoreError(f"{name}@{alias} in {self.uri} does not point at a version")
        self.backend.delete(f"{name}/aliases/{alias}.json")
        number = (seq if seq is not None else self._last_change(name, alias)) + 1
        self._record(
            name, AliasChange(number, alias, "delete", version, None, _now(), self.actor, reason)
        )
        return version

    # -- lifecycle ------------------------------------------------------------------------
    def routed_versions(self, name: str) -> dict[str, list[str]]:
        """Version -> the aliases that can send requests to it (as version, canary, shadow)."""
        used: dict[str, list[str]] = {}
        for alias in self.aliases(name):
            try:
                route = self.route(name, alias)
            except StoreError:
                continue
            for version in sorted(route.versions, key=int):
                used.setdefault(version, []).append(alias)
        return used

    def delete_version(self, name: str, version: str) -> list[str]:
        """Delete a published version's files; refused while an alias can route to it.
        The manifest goes first (readers stop seeing the version at once); the claim stays
        as a tombstone, so the number is never given to another version. Returns the keys
        deleted."""
        check_name(name)
        check_version(version)
        self.manifest(name, version)  # refuses an unknown version
        aliases = self.routed_versions(name).get(version)
        if aliases:
            raise InvalidInput(
                f"{name}:{version} is still routed to by "
                + ", ".join(f"{name}@{a}" for a in aliases)
                + "; move those aliases first",
                aliases=aliases,
            )
        prefix = f"{name}/versions/{version}"
        files = [f for f in self.backend.children(prefix) if f != ".claim"]
        order = [artifact.MANIFEST, *sorted(f for f in files if f != artifact.MANIFEST)]
        deleted = []
        for file in order:
            if file in files:
                self.backend.delete(f"{prefix}/{file}")
                deleted.append(f"{prefix}/{file}")
        return deleted

    def prune(self, name: str, keep: int) -> list[str]:
        """Delete the oldest published versions beyond the newest `keep`, skipping any an
        alias routes to. Returns the versions deleted."""
        if keep < 1:
            raise InvalidInput("keep at least one version")
        versions = self.versions(name)
        routed = self.routed_versions(name)
        doomed = [v for v in versions[: max(0, len(versions) - keep)] if v not in routed]
        for version in doomed:
            self.delete_version(name, version)
        return doomed

    # -- alias history ----------------------------------------------------------------------
    def history(self, name: str, alias: str) -> list[AliasChange]:
        """Every recorded change of an alias, oldest first."""
        check_name(name)
        check_name(alias, "alias")
        self.require(name)
        changes = []
        for entry in self.backend.children(f"{name}/history/{alias}"):
            number = entry.removesuffix(".json")
            if not (entry.endswith(".json") and number.isdigit()):
                continue
            raw = self.backend.read(f"{name}/history/{alias}/{entry}", ALIAS_BYTES)
            try:
                doc = jsontext.loads(raw, f"{name}@{alias} change {number}")
            except MaasError:
                continue
            if isinstance(doc, dict):
                changes.append(AliasChange.from_dict(doc))
        return sorted(changes, key=lambda change: change.seq)

    def rollback(
        self, name: str, alias: str, *, to: str | None = None, reason: str | None = None
    ) -> tuple[str, str]:
        """Move an alias back: to `to`, or one step - while it has a canary or a shadow, to
        its version alone; else to the version it pointed at before the change that brought
        it to its current one (rollbacks undo, they are not undone by the next rollback).
        Either way its splits end. Returns (from, to)."""
        route = self.route(name, alias)
        current = route.version
        if to is None and (route.canary or route.shadow):
            # the newest step is a split: undoing it leaves the alias's version, alone
            self.promote(name, current, alias, action="rollback", reason=reason)
            return current, current
        if to is None:
            # replay the history: each promote pushes what it replaced, each rollback that
            # returned to the top of that stack pops it, a deletion forgets it; changes that
            # kept the version (splits) do not count
            earlier: list[str | None] = []
            for change in self.history(name, alias):
                if change.before == change.after:
                    continue
                if change.action == "delete":
                    earlier.clear()
                elif change.action == "rollback" and earlier and earlier[-1] == change.after:
                    earlier.pop()
                else:
                    earlier.append(change.before)
            if not earlier or earlier[-1] is None:
                raise ModelNotFound(
                    f"{name}@{alias} -> {current} has no earlier version in its history to "
                    "roll back to; name one with --to"
                )
            to = earlier[-1]
        if to == current:
            raise InvalidInput(f"{name}@{alias} already points at {current}")
        self.promote(name, to, alias, action="rollback", reason=reason)
        return current, to

    def _last_change(self, name: str, alias: str) -> int:
        numbers = [
            int(entry.removesuffix(".json"))
            for entry in self.backend.children(f"{name}/history/{alias}")
            if entry.endswith(".json") and entry.removesuffix(".json").isdigit()
        ]
        return max(numbers, default=0)

    def _record(self, name: str, change: AliasChange) -> None:
        key = f"{name}/history/{change.alias}/{change.seq:08d}.json"
        try:
            self.backend.write(key, json.dumps(change.to_dict()).encode(), exclusive=True)
        except VersionConflict:
            # only a pointer written by an older maas (no seq) can lead here: keep both
            self._record(name, AliasChange(**{**change.__dict__, "seq": change.seq + 1}))


ALIAS_BYTES = 4096


def _plain_file_name(name: str) -> bool:
    """A file name of an artifact: one path segment, not hidden, nothing the store reserves."""
    return (
        bool(name)
        and "/" not in name
        and "\\" not in name
        and not name.startswith(".")
        and name not in (artifact.MANIFEST, signing.SIGNATURE)
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
