"""Classification metrics in plain numpy, shared by the training job and `maas evaluate`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt


def confusion_matrix(
    y_true: Sequence[int], y_pred: Sequence[int], n_classes: int
) -> npt.NDArray[np.int64]:
    """Rows are true classes, columns predicted classes."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return matrix


Z_95 = 1.959964  # the standard normal's 97.5th percentile: two-sided 95 %


def wilson_interval(correct: int, n: int, z: float = Z_95) -> list[float]:
    """The 95 % Wilson score interval of a proportion `correct / n` (an accuracy): unlike
    p ± z·se it stays inside [0, 1] and is honest at 0 %, 100 % and small n."""
    if n <= 0:
        return [0.0, 1.0]
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(float(max(0.0, centre - half)), 6), round(float(min(1.0, centre + half)), 6)]


def classification_report(
    y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]
) -> dict[str, Any]:
    """accuracy with its 95 % Wilson interval, macro_f1, n, per_class {label: precision,
    recall, f1, support} and the confusion matrix (rows true, columns predicted, in `labels`
    order)."""
    matrix = confusion_matrix(y_true, y_pred, len(labels))
    n = int(matrix.sum())
    true_positive = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    support = matrix.sum(axis=1).astype(np.float64)
    precision = np.divide(
        true_positive, predicted, out=np.zeros_like(true_positive), where=predicted > 0
    )
    recall = np.divide(true_positive, support, out=np.zeros_like(true_positive), where=support > 0)
    denominator = precision + recall
    f1 = np.divide(
        2 * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0
    )
    return {
        "n": n,
        "accuracy": float(true_positive.sum() / n) if n else 0.0,
        "accuracy_interval": wilson_interval(int(true_positive.sum()), n),
        "macro_f1": float(f1.mean()) if len(labels) else 0.0,
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": matrix.tolist(),
    }
