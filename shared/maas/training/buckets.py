"""Sequence-length buckets: exported by `export`, checked here before the manifest names them.

A bucket must answer exactly like the full model. The serving classifier with the buckets is
compared with the one without them (the reference, which also produced the golden examples) on
the test texts and on prefixes of them, so every bucket and every amount of padding is
exercised. Buckets that do not agree within BUCKET_TOLERANCE (far below the golden examples'
1e-3) are dropped, files included, and the model is served from its one full model. Each
bucket also adds a golden example it serves, so `maas publish` re-checks every bucket with the
Lambda's own interpreter.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from maas.core import manifest as artifact
from maas.core.classifier import Classifier
from maas.core.manifest import Buckets, GoldenExample
from maas.training.export import LSTM_STATE, STEP, BucketPlan, bucket_file

BUCKET_TOLERANCE = 1e-6
PREFIX_TEXTS = 200  # texts whose prefixes are checked too
PREFIX_CHARS = (1, 2, 4, 8, 16, 32, 64)


def entry(plan: BucketPlan) -> Buckets:
    """The manifest's `buckets`, before the check adds its results."""
    described: dict[str, Any] = {
        "kind": plan.kind,
        "models": [{"length": length, "file": bucket_file(length)} for length in plan.lengths],
    }
    if plan.kind == LSTM_STATE:
        described["step"] = STEP
    return Buckets.model_validate(described)


def check(
    directory: Path, plan: BucketPlan, texts: Sequence[str]
) -> tuple[Buckets | None, list[GoldenExample]]:
    """The manifest entry for the buckets (None: they disagree and their files are removed),
    and golden examples, one per bucket: the first of `texts` it serves."""
    manifest = artifact.read_manifest(directory)  # the preliminary one, without buckets
    described = entry(plan)
    reference = Classifier(directory, manifest, name="check")
    bucketed = Classifier(directory, manifest.updated(buckets=described), name="check")
    probes = [*texts, ""]
    probes += [text[:n] for text in texts[:PREFIX_TEXTS] for n in PREFIX_CHARS if n < len(text)]
    expected = reference.probabilities(probes)
    worst = float(np.max(np.abs(bucketed.probabilities(probes) - expected)))
    if worst > BUCKET_TOLERANCE:
        extra = manifest.updated(buckets=described).serving_files()[len(artifact.SERVING_FILES) :]
        for name in extra:
            (directory / name).unlink(missing_ok=True)
        return None, []
    described = described.model_copy(update={"max_abs_diff": worst, "checked_texts": len(probes)})
    golden = []
    for length in plan.lengths:
        row = next(
            (i for i, text in enumerate(texts) if bucketed.read_length(text) == length), None
        )
        if row is not None:
            probabilities = [float(p) for p in expected[row]]
            golden.append(GoldenExample(text=texts[row], probabilities=probabilities))
    return described, golden
