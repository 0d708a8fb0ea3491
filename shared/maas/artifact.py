"""The model artifact: a directory with `model.tflite`, `tokenizer.json` and `manifest.json`
(plus a model card and its pictures). The manifest is the root of trust: it records the
sha256 of every other file, and a store writes it last.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from maas.errors import IntegrityError, MaasError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
MODEL = "model.tflite"
TOKENIZER = "tokenizer.json"
# What a serving process needs; the rest of an artifact (card, plots) is for people.
SERVING_FILES = (MODEL, TOKENIZER)
REQUIRED_KEYS = ("schema_version", "labels", "task", "input", "tokenizer", "files", "golden")

Manifest = dict[str, Any]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dumps(manifest: Manifest) -> bytes:
    return json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=True).encode("utf-8")


def parse_manifest(data: bytes, source: str = "manifest") -> Manifest:
    try:
        manifest = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MaasError(f"{source} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise MaasError(f"{source} is not a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise MaasError(f"{source} lacks {', '.join(missing)}")
    if manifest["schema_version"] != SCHEMA_VERSION:
        raise MaasError(
            f"{source} has schema version {manifest['schema_version']}; "
            f"this maas reads version {SCHEMA_VERSION}"
        )
    return manifest


def read_manifest(directory: str | Path) -> Manifest:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise MaasError(f"{directory} is not a model artifact: {MANIFEST} is missing")
    return parse_manifest(path.read_bytes(), str(path))


def describe_files(directory: str | Path) -> dict[str, dict[str, Any]]:
    """sha256 and size of every regular file of an artifact except the manifest."""
    root = Path(directory)
    return {
        path.name: {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        for path in sorted(root.iterdir())
        if path.is_file() and path.name != MANIFEST and not path.name.startswith(".")
    }


def write_manifest(directory: str | Path, manifest: Manifest) -> Manifest:
    """Record the current files' digests in the manifest and write it (last)."""
    manifest = dict(manifest, schema_version=SCHEMA_VERSION, files=describe_files(directory))
    (Path(directory) / MANIFEST).write_bytes(dumps(manifest))
    return manifest


def serving_files(manifest: Manifest) -> tuple[str, ...]:
    """SERVING_FILES plus the models of the artifact's sequence-length buckets, if it has any
    (artifacts written before buckets have none and serve from the one model)."""
    buckets = manifest.get("buckets") or {}
    extra = [entry["file"] for entry in buckets.get("models", [])]
    if buckets.get("step"):
        extra.append(buckets["step"])
    return (*SERVING_FILES, *extra)


def verify_file(path: str | Path, expected_sha256: str) -> None:
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise IntegrityError(
            f"{Path(path).name} does not match its manifest "
            f"(sha256 {actual[:12]}…, expected {expected_sha256[:12]}…); refusing to load it",
            file=Path(path).name,
        )


def verify_files(directory: str | Path, manifest: Manifest, names: tuple[str, ...] = ()) -> None:
    """Check the named files (default: all the manifest lists) against their digests."""
    files = manifest["files"]
    for name in names or tuple(files):
        if name not in files:
            raise IntegrityError(f"the manifest lists no {name}", file=name)
        path = Path(directory) / name
        if not path.is_file():
            raise IntegrityError(f"{name} is missing from {directory}", file=name)
        verify_file(path, files[name]["sha256"])
