"""Labelled data -> class ids and a seeded, stratified train/validation/test split."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from maas.client.data import AUTO, Dataset, FileOptions, read_labelled
from maas.errors import BadData
from maas.training.rows import TrainRows

Array = npt.NDArray[Any]

TEST_FRACTION = 0.1
VALIDATION_FRACTION = 0.1
# Below this, a stratified 80/10/10 split leaves a label out of validation or test.
MIN_ROWS_PER_LABEL = 10


@dataclass(frozen=True)
class Split:
    texts: list[str]
    y: Array  # class ids, int64


@dataclass(frozen=True)
class LabelledData:
    source: str  # the file's name
    fingerprint: str  # `Dataset.fingerprint`: sha256 over the rows
    rows: int
    labels: list[str]  # sorted; a label's position is its class id
    label_counts: dict[str, int]
    # Held in memory. For a streamed file (`maas.training.stream`) `train` is a sample of the
    # train split (what the baseline fits); the whole split stays on disk, in `streamed`.
    train: Split
    validation: Split
    test: Split
    streamed: TrainRows | None = None

    @property
    def train_rows(self) -> int:
        return self.streamed.rows if self.streamed else len(self.train.texts)


def check_labels(counts: Mapping[str, int]) -> list[str]:
    """The sorted label set, or BadData when it cannot train and evaluate a classifier."""
    if len(counts) < 2:
        found = ", ".join(repr(label) for label in counts) or "none"
        raise BadData(f"need at least 2 different labels to train a classifier; found {found}")
    scarce = sorted((n, label) for label, n in counts.items() if n < MIN_ROWS_PER_LABEL)
    if scarce:
        listed = ", ".join(f"{label!r} ({n})" for n, label in scarce)
        raise BadData(
            f"too few rows to split 80/10/10: every label needs at least {MIN_ROWS_PER_LABEL}, "
            f"but {listed} {'has' if len(scarce) == 1 else 'have'} fewer"
        )
    return sorted(counts)


def stratified_split(dataset: Dataset, labels: list[str], seed: int) -> tuple[Split, Split, Split]:
    from sklearn.model_selection import train_test_split

    index = {label: i for i, label in enumerate(labels)}
    y = np.asarray([index[label] for label in dataset.labels], dtype=np.int64)
    rows = np.arange(len(y))
    rest, test = train_test_split(rows, test_size=TEST_FRACTION, stratify=y, random_state=seed)
    # The validation share is taken from what is left, so it is 10% of the whole.
    train, validation = train_test_split(
        rest,
        test_size=VALIDATION_FRACTION / (1 - TEST_FRACTION),
        stratify=y[rest],
        random_state=seed,
    )

    def pick(part: Array) -> Split:
        part = np.sort(part)  # file order inside each split: easier to read, same result
        return Split([dataset.texts[i] for i in part], y[part])

    return pick(train), pick(validation), pick(test)


def load(
    path: str | Path,
    text_column: str,
    label_column: str,
    seed: int,
    options: FileOptions = AUTO,
) -> LabelledData:
    """The whole file in memory, split exactly (stratified); `maas.training.stream.load` is
    the same for a file too large to hold."""
    dataset = read_labelled(path, text_column, label_column, options)
    counts = Counter(dataset.labels)
    labels = check_labels(counts)
    train, validation, test = stratified_split(dataset, labels, seed)
    return LabelledData(
        dataset.source,
        dataset.fingerprint(),
        len(dataset.texts),
        labels,
        {label: counts[label] for label in labels},
        train,
        validation,
        test,
    )
