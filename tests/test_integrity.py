"""Versions that cannot be swapped, model files that cannot take a function down, a local
store that cannot be walked out of - tried as an attacker with write access to the store
would try them, on both backends."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import SIGNER, open_store

from maas.core import manifest as artifact
from maas.core import probe
from maas.core.classifier import Classifier
from maas.errors import IntegrityError, InvalidModelRef, ModelCrashed, StoreError
from maas.local.lambda_runtime import lambda_context, load_event, load_function
from maas.store.registry import ModelStore
from maas.store.signing import KmsKey, open_signer

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ModelStore:
    if request.param == "local":
        return open_store(tmp_path / "store")
    return open_store(f"s3://{request.getfixturevalue('s3_bucket')}/models")


def overwrite(store: ModelStore, key: str, data: bytes) -> None:
    """What an attacker with write access to the bucket or directory does: a plain put."""
    store.backend.write(key, data)


def resealed(store: ModelStore, name: str, version: str, **changes: Any) -> None:
    """Rewrite a version's manifest with changes and every file's sha256 recomputed, so the
    manifest is self-consistent - only the signature can tell."""
    raw = store.manifest_bytes(name, version)
    doc = json.loads(raw) | changes
    overwrite(store, f"{name}/versions/{version}/manifest.json", json.dumps(doc).encode())


# ----------------------------------------------------------------------------- signatures
def test_a_published_version_is_signed_and_verifies(
    store: ModelStore, trained_model: Path, tmp_path: Path
) -> None:
    version = store.publish(trained_model, "reviews")
    local = store.fetch(f"reviews:{version}", tmp_path / "cache")
    signature = json.loads(store.backend.read(f"reviews/versions/{version}/manifest.sig"))
    assert (
        signature["statement"]["manifest_sha256"]
        == hashlib.sha256(store.manifest_bytes("reviews", version)).hexdigest()
    )
    assert signature["key"] == SIGNER.key and "secret" not in json.dumps(signature)
    assert local.open().verify_golden() <= 1e-3


def test_swapped_labels_are_refused(store: ModelStore, trained_model: Path, tmp_path: Path) -> None:
    version = store.publish(trained_model, "reviews")
    resealed(store, "reviews", version, labels=["positive", "negative"])
    with pytest.raises(IntegrityError, match="changed after it was published"):
        store.fetch(f"reviews:{version}", tmp_path / "cache")


def test_replaced_weights_with_a_rehashed_manifest_are_refused(
    store: ModelStore, trained_model: Path, tmp_path: Path
) -> None:
    version = store.publish(trained_model, "reviews")
    forged = (trained_model / "model.tflite").read_bytes()[:-1] + b"\x00"
    overwrite(store, f"reviews/versions/{version}/model.tflite", forged)
    doc = json.loads(store.manifest_bytes("reviews", version))
    doc["files"]["model.tflite"]["sha256"] = hashlib.sha256(forged).hexdigest()
    overwrite(store, f"reviews/versions/{version}/manifest.json", json.dumps(doc).encode())
    with pytest.raises(IntegrityError, match="changed after it was published"):
        store.fetch(f"reviews:{version}", tmp_path / "cache")


def test_a_signature_copied_from_another_version_is_refused(
    store: ModelStore, trained_model: Path, tmp_path: Path
) -> None:
    one, two = store.publish(trained_model, "reviews"), store.publish(trained_model, "reviews")
    signature = store.backend.read(f"reviews/versions/{one}/manifest.sig")
    overwrite(store, f"reviews/versions/{two}/manifest.sig", signature)
    with pytest.raises(IntegrityError, match="another manifest or version"):
        store.fetch(f"reviews:{two}", tmp_path / "cache")


def test_unsigned_and_foreign_versions_are_refused_unless_signing_is_off(
    store: ModelStore, trained_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unsigned = ModelStore(store.backend).publish(trained_model, "reviews")
    with pytest.raises(IntegrityError, match="is not signed"):
        store.fetch(f"reviews:{unsigned}", tmp_path / "a")
    other = open_signer(str(tmp_path / "other.key"), create=True)
    foreign = ModelStore(store.backend, other).publish(trained_model, "reviews")
    with pytest.raises(IntegrityError, match="this reader trusts"):
        store.fetch(f"reviews:{foreign}", tmp_path / "b")
    assert ModelStore(store.backend).fetch(f"reviews:{unsigned}", tmp_path / "c").version == "1"


def test_kms_signs_and_verifies_on_moto(
    s3_bucket: str, trained_model: Path, tmp_path: Path, moto_endpoint: str
) -> None:
    kms = boto3.client("kms")
    arn = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    signer = open_signer(f"kms:{arn}")
    assert isinstance(signer, KmsKey)
    store = ModelStore.open(f"s3://{s3_bucket}/models", signer)
    version = store.publish(trained_model, "reviews", alias="production")
    assert store.fetch("reviews", tmp_path / "cache").version == version
    resealed(store, "reviews", version, labels=["positive", "negative"])
    with pytest.raises(IntegrityError, match="changed after it was published"):
        store.fetch("reviews", tmp_path / "again")
    forged = json.loads(store.backend.read(f"reviews/versions/{version}/manifest.sig"))
    forged["statement"]["manifest_sha256"] = hashlib.sha256(
        store.manifest_bytes("reviews", version)
    ).hexdigest()
    overwrite(store, f"reviews/versions/{version}/manifest.sig", json.dumps(forged).encode())
    with pytest.raises(IntegrityError, match="does not verify"):
        store.fetch("reviews", tmp_path / "third")


def test_version_objects_are_written_once(store: ModelStore, trained_model: Path) -> None:
    from maas.errors import VersionConflict

    version = store.publish(trained_model, "reviews")
    for name in ("model.tflite", "manifest.sig", "manifest.json"):
        with pytest.raises(VersionConflict):
            store.backend.write(f"reviews/versions/{version}/{name}", b"x", exclusive=True)


# ------------------------------------------------------------------------ crashing models
def truncated_version(store: ModelStore, trained_model: Path, tmp_path: Path, cut: int) -> str:
    """A version whose model file is cut short - published by force: a correctly signed
    manifest that describes the broken file (what a buggy or hostile publisher produces)."""
    broken = tmp_path / f"broken-{cut}"
    broken.mkdir()
    for path in trained_model.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    model = broken / "model.tflite"
    model.write_bytes(model.read_bytes()[:cut])
    manifest = artifact.read_manifest(broken).updated(buckets=None)
    for name in list(manifest.files):
        if name.startswith("model-"):
            (broken / name).unlink()
    artifact.write_manifest(broken, manifest)
    return store.publish(broken, "broken")


@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.98])
def test_a_crashing_model_file_is_refused_in_a_child_not_in_the_process(
    trained_model: Path, tmp_path: Path, fraction: float
) -> None:
    store = open_store(tmp_path / "store")
    size = (trained_model / "model.tflite").stat().st_size
    version = truncated_version(store, trained_model, tmp_path, int(size * fraction))
    local = store.fetch(f"broken:{version}", tmp_path / "cache")
    with pytest.raises(ModelCrashed):
        Classifier(local.path, local.manifest)
    assert Classifier(*_good(store, trained_model, tmp_path)).verify_golden() <= 1e-3


def _good(store: ModelStore, trained_model: Path, tmp_path: Path) -> tuple[Path, Any]:
    local = store.fetch(f"reviews:{store.publish(trained_model, 'reviews')}", tmp_path / "ok")
    return local.path, local.manifest


def test_a_hanging_model_probe_is_killed(tmp_path: Path) -> None:
    model = tmp_path / "model.tflite"
    model.write_bytes(b"\x10\x00\x00\x00TFL3" + b"\x00" * 64)

    with pytest.raises(ModelCrashed, match="did not finish"):
        probe.ensure_safe([model], ["f" * 64], threading.Event().wait, timeout=0.5)


def test_the_http_function_serves_other_models_while_one_crashes(
    trained_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(tmp_path / "store")
    store.publish(trained_model, "reviews", alias="production")
    size = (trained_model / "model.tflite").stat().st_size
    truncated_version(store, trained_model, tmp_path, size // 2)
    monkeypatch.setenv("MAAS_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("MAAS_MODEL_NAME", "reviews")
    monkeypatch.setenv("MAAS_CACHE_DIR", str(tmp_path / "cache"))
    app = load_function("http")
    ev = load_event("http", "predict-one")
    ok = app.handler(ev, lambda_context())
    broken = dict(ev, rawPath="/models/broken/predict", pathParameters={"name": "broken"})
    broken["requestContext"] = dict(ev["requestContext"], http=dict(ev["requestContext"]["http"]))
    broken["requestContext"]["http"]["path"] = "/models/broken/predict"
    refused = app.handler(broken, lambda_context())
    assert ok["statusCode"] == 200
    assert refused["statusCode"] == 503
    assert json.loads(refused["body"])["error"]["code"] == "model_crashed"
    assert app.handler(ev, lambda_context())["statusCode"] == 200, "the function is still up"


# ------------------------------------------------------------------------- the local store
@pytest.mark.parametrize("name", ["../x", "a/b", "..", "x\n", ".hidden"])
def test_names_that_leave_the_store_are_refused(
    trained_model: Path, tmp_path: Path, name: str
) -> None:
    store = open_store(tmp_path / "store")
    with pytest.raises(InvalidModelRef):
        store.publish(trained_model, name)
    assert not any(p for p in tmp_path.iterdir() if p.name != "store"), "nothing written outside"


@pytest.mark.parametrize("version", ["../../../x", "1/../2", "0", "1\n", "-1"])
def test_versions_that_leave_the_store_are_refused(
    trained_model: Path, tmp_path: Path, version: str
) -> None:
    store = open_store(tmp_path / "store")
    store.publish(trained_model, "reviews")
    with pytest.raises(InvalidModelRef):
        store.promote("reviews", version, "production")


def test_an_alias_file_pointing_out_of_the_store_is_refused(
    trained_model: Path, tmp_path: Path
) -> None:
    store = open_store(tmp_path / "store")
    store.publish(trained_model, "reviews")
    overwrite(store, "reviews/aliases/production.json", b'{"version": "../../../etc"}')
    with pytest.raises(StoreError, match="does not point at a version"):
        store.resolve("reviews@production")


def test_links_out_of_the_store_and_special_files_are_not_followed(
    trained_model: Path, tmp_path: Path
) -> None:
    store = open_store(tmp_path / "store")
    version = store.publish(trained_model, "reviews")
    folder = tmp_path / "store" / "reviews" / "versions" / version
    model = folder / "model.tflite"
    model.unlink()
    model.symlink_to("/dev/zero")
    with pytest.raises(IntegrityError, match=r"leads out of the store|not a regular file"):
        store.fetch(f"reviews:{version}", tmp_path / "cache")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "model.tflite").write_bytes((trained_model / "model.tflite").read_bytes())
    model.unlink()
    model.symlink_to(outside / "model.tflite")
    with pytest.raises(IntegrityError, match="leads out of the store"):
        store.fetch(f"reviews:{version}", tmp_path / "cache2")


def test_a_file_larger_than_its_manifest_says_is_not_copied(
    store: ModelStore, trained_model: Path, tmp_path: Path
) -> None:
    version = store.publish(trained_model, "reviews")
    big = (trained_model / "tokenizer.json").read_bytes() + b" " * (1 << 20)
    overwrite(store, f"reviews/versions/{version}/tokenizer.json", big)
    with pytest.raises(IntegrityError, match="larger than"):
        store.fetch(f"reviews:{version}", tmp_path / "cache")


# -------------------------------------------------------------------------------- aliases
def test_concurrent_publishes_leave_the_alias_on_the_newest(
    store: ModelStore, trained_model: Path
) -> None:
    errors: list[BaseException] = []

    def publish() -> None:
        try:
            store.publish(trained_model, "reviews", alias="production")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=publish) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.alias("reviews", "production") == store.versions("reviews")[-1] == "6"


def test_a_promote_never_loses_a_concurrent_one(store: ModelStore, trained_model: Path) -> None:
    for _ in range(3):
        store.publish(trained_model, "reviews")
    befores: list[str | None] = []
    lock = threading.Lock()

    def promote(version: str) -> Callable[[], None]:
        def run() -> None:
            before = store.promote("reviews", version, "staging")
            with lock:
                befores.append(before)

        return run

    threads = [threading.Thread(target=promote(str(v % 3 + 1))) for v in range(9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # each promote saw the pointer the one before it wrote: one None, then a chain of 8
    assert befores.count(None) == 1 and len(befores) == 9
    assert os.environ["MAAS_SIGNING_KEY"]  # the session key the store signs with
