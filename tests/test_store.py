"""The model store on both backends: a local directory and S3 (moto server over HTTP)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from conftest import SIGNER

from maas.core import manifest as artifact
from maas.core.tokenizer import TokenizerSpec
from maas.errors import IntegrityError, InvalidModelRef, ModelNotFound, StoreError, VersionConflict
from maas.store import LocalBackend, ModelRef, ModelStore, S3Backend, backend_for


def make_artifact(directory: Path, payload: bytes = b"model-bytes") -> Path:
    """A structurally complete artifact; the store does not look inside the model."""
    directory.mkdir(parents=True)
    (directory / artifact.MODEL).write_bytes(payload)
    (directory / artifact.TOKENIZER).write_text('{"format": "maas.tokenizer/1"}')
    (directory / "model-card.md").write_text("# card\n")
    manifest = artifact.Manifest(
        labels=["a", "b"],
        task="binary",
        input=artifact.TensorSpec(dtype="int32", shape=[1, 100]),
        tokenizer=TokenizerSpec(),
    )
    artifact.write_manifest(directory, manifest)
    return directory


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ModelStore:
    if request.param == "local":
        return ModelStore.open(tmp_path / "store")
    bucket = request.getfixturevalue("s3_bucket")
    return ModelStore.open(f"s3://{bucket}/models")


def test_publish_list_resolve_and_fetch(store: ModelStore, tmp_path: Path) -> None:
    first = make_artifact(tmp_path / "a1", b"one")
    second = make_artifact(tmp_path / "a2", b"two")
    assert store.publish(first, "reviews") == "1"
    assert store.publish(second, "reviews", alias="staging") == "2"
    assert store.models() == ["reviews"]
    assert store.versions("reviews") == ["1", "2"]
    assert store.aliases("reviews") == {"staging": "2"}

    assert store.resolve("reviews") == ("reviews", "2")  # no production alias: latest
    store.promote("reviews", "1", "production")
    assert store.resolve("reviews") == ("reviews", "1")
    assert store.resolve("reviews@staging") == ("reviews", "2")
    assert store.resolve("reviews:2") == ("reviews", "2")

    local = store.fetch("reviews@staging", tmp_path / "cache")
    assert (local.path / artifact.MODEL).read_bytes() == b"two"
    assert local.manifest.name == "reviews" and local.manifest.version == "2"
    assert not (local.path / "model-card.md").exists(), "serving fetches only what it needs"
    # a second fetch reuses the verified copy
    assert store.fetch("reviews:2", tmp_path / "cache").path == local.path


def test_versions_are_immutable(store: ModelStore, tmp_path: Path) -> None:
    store.publish(make_artifact(tmp_path / "a"), "m")
    with pytest.raises(VersionConflict):
        store.backend.write("m/versions/1/manifest.json", b"{}", exclusive=True)
    assert store.manifest("m", "1").version == "1"


def test_unknown_models_versions_and_aliases(store: ModelStore, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="no model named 'nope'"):
        store.resolve("nope")
    store.publish(make_artifact(tmp_path / "a"), "m")
    with pytest.raises(ModelNotFound, match="no version 7"):
        store.fetch("m:7", tmp_path / "cache")
    with pytest.raises(ModelNotFound, match="no alias 'prod'"):
        store.resolve("m@prod")
    with pytest.raises(ModelNotFound):
        store.promote("m", "9", "production")


def test_a_tampered_file_is_refused(store: ModelStore, tmp_path: Path) -> None:
    store.publish(make_artifact(tmp_path / "a"), "m")
    store.backend.write("m/versions/1/model.tflite", b"evil")
    with pytest.raises(IntegrityError, match=r"model\.tflite does not match its manifest"):
        store.fetch("m", tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("m/*")), "nothing unverified is left in the cache"


def test_a_version_without_manifest_is_invisible(store: ModelStore, tmp_path: Path) -> None:
    """What a reader sees while a publish is under way: the files are there, the manifest not."""
    store.publish(make_artifact(tmp_path / "a"), "m")
    store.backend.write("m/versions/2/.claim", b"x", exclusive=True)
    store.backend.write("m/versions/2/model.tflite", b"half")
    assert store.versions("m") == ["1"]
    assert store.resolve("m") == ("m", "1")
    # and the next publish skips the claimed number
    assert store.publish(make_artifact(tmp_path / "b"), "m") == "3"


def test_publish_writes_the_manifest_last(tmp_path: Path) -> None:
    order: list[str] = []
    backend = LocalBackend(tmp_path / "store")
    upload, write = backend.upload, backend.write

    def record_upload(
        key: str, path: Path, progress: Callable[[int], None] | None = None, *, exclusive: bool
    ) -> None:
        assert exclusive, "a version's files are written once"
        order.append(key.rsplit("/", 1)[1])
        upload(key, path, progress, exclusive=exclusive)

    def record_write(key: str, data: bytes, *, exclusive: bool = False) -> None:
        order.append(key.rsplit("/", 1)[1])
        write(key, data, exclusive=exclusive)

    backend.upload = record_upload
    backend.write = record_write
    ModelStore(backend, SIGNER).publish(make_artifact(tmp_path / "a"), "m")
    assert order[0] == ".claim" and order[-2:] == ["manifest.sig", "manifest.json"]
    assert set(order[1:-2]) == {"model.tflite", "tokenizer.json", "model-card.md"}


def test_concurrent_publishers_get_distinct_versions(store: ModelStore, tmp_path: Path) -> None:
    sources = [make_artifact(tmp_path / f"a{i}", f"m{i}".encode()) for i in range(4)]
    versions: list[str] = []
    threads = [
        threading.Thread(target=lambda s=s: versions.append(store.publish(s, "m"))) for s in sources
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(versions, key=int) == ["1", "2", "3", "4"]
    payloads = {
        store.fetch(f"m:{v}", tmp_path / "cache").path.joinpath("model.tflite").read_bytes()
        for v in versions
    }
    assert payloads == {b"m0", b"m1", b"m2", b"m3"}


def test_publish_refuses_an_artifact_that_does_not_match_its_manifest(
    store: ModelStore, tmp_path: Path
) -> None:
    source = make_artifact(tmp_path / "a")
    (source / artifact.TOKENIZER).write_text("changed after training")
    with pytest.raises(IntegrityError):
        store.publish(source, "m")
    assert store.versions("m") == []


def test_s3_layout_is_plain_objects(s3_bucket: str, tmp_path: Path) -> None:
    store = ModelStore.open(f"s3://{s3_bucket}/prefix")
    store.publish(make_artifact(tmp_path / "a"), "m", alias="production")
    keys = {o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert "prefix/m/versions/1/manifest.json" in keys
    pointer = boto3.client("s3").get_object(
        Bucket=s3_bucket, Key="prefix/m/aliases/production.json"
    )
    assert json.loads(pointer["Body"].read())["version"] == "1"


def test_unreachable_s3_is_a_store_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on port 9
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(StoreError, match="cannot reach"):
        ModelStore.open("s3://bucket/models").resolve("m")


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("s3://bucket/a/b", S3Backend),
        ("file:///tmp/x", LocalBackend),
        ("relative/dir", LocalBackend),
    ],
)
def test_store_uris(uri: str, kind: type) -> None:
    assert isinstance(backend_for(uri), kind)


def test_store_uri_errors() -> None:
    with pytest.raises(StoreError):
        backend_for("gs://bucket")
    with pytest.raises(StoreError):
        backend_for("s3://")


@pytest.mark.parametrize("text", ["", "a/b", "m@", "m:0", "m:x", "../etc", "m@a/b"])
def test_invalid_references(text: str) -> None:
    with pytest.raises(InvalidModelRef):
        ModelRef.parse(text)


def test_reference_forms() -> None:
    assert ModelRef.parse("m") == ModelRef("m")
    assert ModelRef.parse("m@production") == ModelRef("m", alias="production")
    assert ModelRef.parse("m:12") == ModelRef("m", version="12")
    assert str(ModelRef.parse("m:12")) == "m:12"
