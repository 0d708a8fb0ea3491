"""What must hold before an artifact may become a version in a store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from maas import artifact
from maas.classifier import Classifier
from maas.errors import QualityGateFailed


def verify_artifact(directory: str | Path, allow_quality_drop: bool = False) -> dict[str, Any]:
    """Refuse an artifact whose files do not match its manifest, whose quantized model failed
    the quality gate (unless allowed), or whose golden examples this process's interpreter —
    the serving runtime — does not reproduce within tolerance."""
    manifest = artifact.read_manifest(directory)
    artifact.verify_files(directory, manifest)
    gate = manifest.get("quality_gate", {})
    if not gate.get("passed", False) and not allow_quality_drop:
        drop = gate.get("accuracy_drop")
        raise QualityGateFailed(
            f"{directory}: the quantized model is "
            + (f"{drop * 100:.2f} accuracy points" if isinstance(drop, (int, float)) else "too far")
            + f" below float (limit {gate.get('max_accuracy_drop', 0.01) * 100:.0f}); "
            "pass --allow-quality-drop to publish it anyway"
        )
    classifier = Classifier.from_directory(directory)
    worst = classifier.verify_golden(manifest["golden"].get("tolerance", 1e-3))
    return {
        "runtime": classifier.runtime,
        "max_abs_diff": worst,
        "files": sorted(manifest["files"]),
    }
