"""The quality gate and the golden examples: plain Python, no TensorFlow."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy.typing as npt

from maas.core.manifest import GOLDEN_TOLERANCE, QualityGate
from maas.errors import QualityGateFailed

Array = npt.NDArray[Any]

MAX_ACCURACY_DROP = 0.01
GOLDEN_COUNT = 8


def quality_gate(
    float_accuracy: float,
    quantized_accuracy: float,
    max_drop: float = MAX_ACCURACY_DROP,
    override: bool = False,
    max_probability_difference: float | None = None,
    test_texts: int | None = None,
) -> QualityGate:
    """How much accuracy quantization cost, and whether that is acceptable. On a small test
    split one flipped answer is already more than a point (1/60 = 1.7 points): the allowed
    drop is then one text (`test_texts`), so a gate can only fail on two flips or more. The
    largest probability difference is recorded too: accuracy alone says little there."""
    if test_texts:
        max_drop = max(max_drop, round(1 / test_texts, 6))
    drop = float_accuracy - quantized_accuracy
    # Rounded so that float noise (0.9 - 0.89 = 0.010000000000000009) cannot fail an equal drop.
    passed = round(drop, 9) <= max_drop
    gate = QualityGate(
        max_accuracy_drop=max_drop,
        accuracy_drop=round(drop, 6),
        passed=passed,
        overridden=override and not passed,
    )
    if max_probability_difference is not None:
        gate = QualityGate.model_validate(
            gate.model_dump() | {"max_probability_difference": round(max_probability_difference, 6)}
        )
    return gate


def enforce(gate: QualityGate | None) -> None:
    if gate is not None and not gate.passed and not gate.overridden:
        raise QualityGateFailed(
            f"quality gate failed: the quantized model is {gate.accuracy_drop:.4f} accuracy "
            f"below float (allowed {gate.max_accuracy_drop}); the artifact is marked "
            "failed; rerun with --allow-quality-drop to accept it",
            **gate.model_dump(),
        )


def golden_rows(y: Sequence[int], n_labels: int, count: int = GOLDEN_COUNT) -> list[int]:
    """Row numbers of about `count` examples covering every label: round-robin over the labels,
    each label's rows in order, so the choice is deterministic and balanced."""
    by_label = [[row for row, label in enumerate(y) if label == k] for k in range(n_labels)]
    chosen: list[int] = []
    depth = 0
    while len(chosen) < max(count, n_labels) and any(depth < len(rows) for rows in by_label):
        chosen += [rows[depth] for rows in by_label if depth < len(rows)]
        depth += 1
    return sorted(chosen[: max(count, n_labels)])


def golden(
    texts: Sequence[str], probabilities: Array, rows: Sequence[int], runtime: str
) -> dict[str, Any]:
    return {
        "runtime": runtime,
        "tolerance": GOLDEN_TOLERANCE,
        "examples": [
            {"text": texts[row], "probabilities": [float(p) for p in probabilities[row]]}
            for row in rows
        ],
    }
