"""What must hold before an artifact may become a version in a store: its files match its
manifest, its quantized model passed the quality gate (unless the publisher accepts the drop),
and this process's interpreter - the serving runtime - reproduces its golden examples."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from maas.core import manifest as artifact
from maas.core.classifier import Classifier
from maas.core.manifest import CROSS_RUNTIME_TOLERANCE, GoldenExample, Manifest, RecordedFrom
from maas.errors import IntegrityError, QualityGateFailed
from maas.store.registry import ModelStore, UploadProgress


@dataclass(frozen=True)
class Verified:
    runtime: str  # the interpreter that reproduced the golden examples
    max_abs_diff: float  # their largest probability difference
    files: list[str]


def verify_artifact(
    directory: str | Path, allow_quality_drop: bool = False, *, adopt: bool = False
) -> Verified:
    """Check an artifact as publishing needs it; with `adopt`, golden examples recorded by
    another runtime are re-recorded by this one first (`adopt_serving_runtime`)."""
    manifest = artifact.read_manifest(directory)
    artifact.verify_files(directory, manifest)
    gate = manifest.quality_gate
    if not (gate and gate.passed) and not allow_quality_drop:
        how_far = f"{gate.accuracy_drop * 100:.2f} accuracy points" if gate else "too far"
        limit = gate.max_accuracy_drop if gate else 0.01
        raise QualityGateFailed(
            f"{directory}: the quantized model is {how_far} below float (limit "
            f"{limit * 100:.0f}); pass --allow-quality-drop to publish it anyway"
        )
    if adopt:
        adopt_serving_runtime(directory)
    classifier = Classifier.open(directory)
    worst = classifier.verify_golden()
    return Verified(classifier.runtime, worst, sorted(manifest.files))


def adopt_serving_runtime(directory: str | Path) -> Verified:
    """Re-record an unpublished artifact's golden examples with this process's interpreter
    (the serving runtime) when another one recorded them (the training job's LiteRT).

    The two agree to ~1e-3 on most models but not on all (their hybrid LSTM kernels round
    differently), so golden examples checked at 1e-3 must come from the runtime that serves.
    A difference beyond CROSS_RUNTIME_TOLERANCE is no rounding: the model is refused. The
    difference found is kept in the manifest (`golden.recorded_from`)."""
    manifest = artifact.read_manifest(directory)
    artifact.verify_files(directory, manifest)
    classifier = Classifier.open(directory)
    golden = manifest.golden
    if golden.runtime == classifier.runtime or not golden.examples:
        return Verified(classifier.runtime, classifier.verify_golden(), sorted(manifest.files))
    worst = classifier.verify_golden(CROSS_RUNTIME_TOLERANCE)
    texts = [example.text for example in golden.examples]
    rerecorded = golden.model_copy(
        update={
            "runtime": classifier.runtime,
            "examples": [
                GoldenExample(text=text, probabilities=[float(p) for p in row])
                for text, row in zip(texts, classifier.probabilities(texts), strict=True)
            ],
            "recorded_from": RecordedFrom(runtime=golden.runtime, max_abs_diff=worst),
        }
    )
    artifact.write_manifest(directory, manifest.updated(golden=rerecorded))
    return Verified(classifier.runtime, worst, sorted(manifest.files))


@dataclass(frozen=True)
class Published:
    version: str
    reused: bool  # an existing version held the same model


def publish(
    directory: str | Path,
    store: ModelStore,
    name: str,
    *,
    alias: str | None = None,
    allow_quality_drop: bool = False,
    reuse: bool = False,
    progress: UploadProgress | None = None,
) -> Published:
    """Verify an artifact, then publish it as the next version of `name`. With `reuse`, a
    version that already serves exactly this model (the same labels and the same bytes of
    every file serving reads) is used instead of a new one - what makes `make demo`
    idempotent. Golden examples another runtime recorded are re-recorded first
    (`adopt_serving_runtime`), so the functions check them with the runtime that serves."""
    verify_artifact(directory, allow_quality_drop, adopt=True)
    if reuse and (same := same_model(store, name, artifact.read_manifest(directory))):
        if alias:
            store.promote(name, same, alias)
        return Published(same, reused=True)
    return Published(store.publish(directory, name, alias=alias, progress=progress), False)


def same_model(store: ModelStore, name: str, manifest: Manifest, look_back: int = 20) -> str | None:
    """The newest of the last `look_back` versions that serves the same model, if any; a
    version the store's signer does not vouch for (unsigned, another key) does not count."""

    def fingerprint(m: Manifest) -> tuple[list[str], dict[str, str]]:
        files = m.serving_files()
        return m.labels, {f: m.files[f].sha256 for f in files if f in m.files}

    wanted = fingerprint(manifest)
    for version in reversed(store.versions(name)[-look_back:]):
        try:
            _, candidate = store.verified_manifest(name, version)
        except IntegrityError:
            continue
        if fingerprint(candidate) == wanted:
            return version
    return None
