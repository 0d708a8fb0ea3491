"""What must hold before an artifact may become a version in a store: its files match its
manifest, its quantized model passed the quality gate (unless the publisher accepts the drop),
and this process's interpreter - the serving runtime - reproduces its golden examples."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from maas.core import manifest as artifact
from maas.core.classifier import Classifier
from maas.errors import QualityGateFailed
from maas.store.registry import ModelStore, UploadProgress


@dataclass(frozen=True)
class Verified:
    runtime: str  # the interpreter that reproduced the golden examples
    max_abs_diff: float  # their largest probability difference
    files: list[str]


def verify_artifact(directory: str | Path, allow_quality_drop: bool = False) -> Verified:
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
    classifier = Classifier.open(directory)
    worst = classifier.verify_golden()
    return Verified(classifier.runtime, worst, sorted(manifest.files))


def publish(
    directory: str | Path,
    store: ModelStore,
    name: str,
    *,
    alias: str | None = None,
    allow_quality_drop: bool = False,
    progress: UploadProgress | None = None,
) -> str:
    """Verify an artifact, then publish it as the next version of `name`; the version."""
    verify_artifact(directory, allow_quality_drop)
    return store.publish(directory, name, alias=alias, progress=progress)
