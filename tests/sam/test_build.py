"""`sam build` output: what Lambda would receive. (The build itself runs before the tests:
`make sam-build`; these tests read .aws-sam/build.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from sam import samlocal

pytestmark = pytest.mark.sam

# Training-only packages that must never reach a function: TensorFlow alone is ~600 MB and
# seconds of cold start (the functions use tflite-runtime).
TRAINING_ONLY = (
    "tensorflow",
    "tensorflow_cpu",
    "tensorflow_intel",
    "keras",
    "tf_keras",
    "tensorboard",
)
# Lambda's limit for a function's code plus all its layers, unzipped.
UNZIPPED_LIMIT = 250 * 1024 * 1024


def size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def test_the_built_bundle_has_no_tensorflow(sam_built: None) -> None:
    found = [
        str(path.relative_to(samlocal.BUILD_DIR))
        for path in samlocal.BUILD_DIR.rglob("*")
        if path.is_dir()
        and (
            path.name.lower() in TRAINING_ONLY
            or (
                path.name.endswith(".dist-info")
                and path.name.split("-")[0].lower() in TRAINING_ONLY
            )
        )
    ]
    assert found == []
    assert (samlocal.BUILD_DIR / "SharedLayer/python/tflite_runtime").is_dir()


def test_each_function_with_its_layer_fits_lambdas_size_limit(sam_built: None) -> None:
    layer = size(samlocal.BUILD_DIR / "SharedLayer")
    for function in ("PredictFunction", "BatchFunction"):
        total = size(samlocal.BUILD_DIR / function) + layer
        assert total < UNZIPPED_LIMIT, f"{function} + layer: {total / 2**20:.0f} MiB unzipped"
