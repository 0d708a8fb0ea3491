"""A training file too large to hold in memory: read once, split as it is read, trained from disk.

`load` reads the file in one pass. Each row is given to a split as it arrives, stratified in
blocks: of every ten rows of a label, a seeded draw sends one to test, one to validation and
eight to train (80/10/10, as the in-memory split). Validation and test are capped at
`HOLDOUT_ROWS` each, a uniform sample of their share kept by reservoir sampling; a row that
the sample does not keep trains instead, so no row is lost. The same pass counts the train
rows' tokens (the vocabulary), fingerprints the file and keeps a sample of the train rows for
the baseline. Then `TrainRows.encode` writes the train split's token ids to a file once, and
the training reads it a window of chunks at a time, in a seeded random order
(`maas.training.rows`): what stays in memory does not grow with the file.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from maas.client.data import AUTO, FileOptions, RowDigest, iter_labelled
from maas.core.tokenizer import TokenizerSpec
from maas.errors import BadData
from maas.progress import Progress
from maas.training import splits
from maas.training.options import STREAM_ABOVE_BYTES
from maas.training.rows import TokenCounts, TrainRows, counted_key

BLOCK = round(1 / splits.TEST_FRACTION)  # rows of one label per draw: 1 test, 1 validation
HOLDOUT_ROWS = 10_000  # each of validation and test, at most (full from 100,000 rows)
BASELINE_SAMPLE_ROWS = 50_000  # the baseline (TF-IDF + LR) fits on a sample of train
BASELINE_ROWS_PER_LABEL = 100  # ... topped up to this many rows of each label (or all it has)
_PROGRESS_EVERY = 4096

_TRAIN, _VALIDATION, _TEST = "train", "validation", "test"
Row = tuple[int, str, str]  # (row number, text, label)


def wanted(path: Path, stream: bool | None) -> bool:
    """Whether to stream `path`: as asked, else when it is large (a .json array is parsed
    whole either way, so it is never streamed unasked)."""
    if stream is not None:
        if stream and path.suffix.lower() == ".json":
            raise BadData(
                f"{path.name}: a JSON array is read whole and cannot stream; save it as "
                "JSON Lines (.jsonl, one object per line) or CSV"
            )
        return stream
    return (
        path.suffix.lower() != ".json"
        and path.is_file()
        and path.stat().st_size > STREAM_ABOVE_BYTES
    )


class _Blocks:
    """Stratified split on the fly: of every `BLOCK` rows of a label, one (a seeded draw) goes
    to test, another to validation, the rest to train."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._state: dict[str, tuple[int, int, int]] = {}  # label: (rows seen, test, validation)

    def part(self, label: str) -> str:
        seen, test, validation = self._state.get(label, (0, -1, -1))
        slot = seen % BLOCK
        if slot == 0:
            test, validation = self._rng.sample(range(BLOCK), 2)
        self._state[label] = (seen + 1, test, validation)
        return _TEST if slot == test else _VALIDATION if slot == validation else _TRAIN


@dataclass
class _Reservoir:
    """A uniform sample of at most `size` of the rows offered (Algorithm R)."""

    size: int
    seed: int
    rows: list[Row] = field(default_factory=list)
    offered: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def offer(self, row: Row) -> Row | None:
        """Keep `row` or not; the row that is not (or is no longer) kept, or None."""
        self.offered += 1
        if len(self.rows) < self.size:
            self.rows.append(row)
            return None
        slot = self._rng.randrange(self.offered)
        if slot >= self.size:
            return row
        dropped, self.rows[slot] = self.rows[slot], row
        return dropped

    def split(self, index: dict[str, int]) -> splits.Split:
        return _split(self.rows, index)


def _split(rows: list[Row], index: dict[str, int]) -> splits.Split:
    rows = sorted(rows)  # file order
    return splits.Split(
        [text for _, text, _ in rows],
        np.asarray([index[label] for _, _, label in rows], dtype=np.int64),
    )


class _Sample:
    """The train rows the baseline (and the default preset's linear path) fit on: a uniform
    sample of `BASELINE_SAMPLE_ROWS`, and, for a label it holds fewer than
    `BASELINE_ROWS_PER_LABEL` rows of, more of that label's rows (a uniform sample of its own):
    a rare label in a large file is never left out, which a classifier could not predict."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._uniform = _Reservoir(BASELINE_SAMPLE_ROWS, seed)
        self._labels: dict[str, _Reservoir] = {}

    def offer(self, row: Row) -> None:
        self._uniform.offer(row)
        label = row[2]
        if label not in self._labels:
            self._labels[label] = _Reservoir(
                BASELINE_ROWS_PER_LABEL, self._seed + len(self._labels) + 1
            )
        self._labels[label].offer(row)

    def split(self, index: dict[str, int]) -> splits.Split:
        rows = {row[0]: row for row in self._uniform.rows}
        held = Counter(label for _, _, label in rows.values())
        for label, reservoir in self._labels.items():
            for row in reservoir.rows:
                if held[label] >= BASELINE_ROWS_PER_LABEL:
                    break
                if row[0] not in rows:
                    rows[row[0]] = row
                    held[label] += 1
        return _split(list(rows.values()), index)


def load(
    path: str | Path,
    text_column: str,
    label_column: str,
    seed: int,
    spec: TokenizerSpec,
    work: Path,
    options: FileOptions = AUTO,
) -> splits.LabelledData:
    """`splits.load` for a file read once, never held: the validation and test splits and a
    sample of train in memory, the train split's rows (and token counts) in `streamed`."""
    source = Path(path)
    blocks = _Blocks(seed)
    holdouts = {
        _VALIDATION: _Reservoir(HOLDOUT_ROWS, seed + 1),
        _TEST: _Reservoir(HOLDOUT_ROWS, seed + 2),
    }
    sample = _Sample(seed + 3)
    counts, digest, labels = TokenCounts(spec), RowDigest(), Counter[str]()
    rows = 0
    with Progress(f"reading {source.name}", None, "row") as progress:
        for rows, (_, text, label) in enumerate(
            iter_labelled(source, text_column, label_column, options), 1
        ):
            digest.add(text, label)
            labels[label] += 1
            part = blocks.part(label)
            row = (rows - 1, text, label)
            trains = row if part == _TRAIN else holdouts[part].offer(row)
            if trains is not None:
                counts.add(trains[1])
                sample.offer(trains)
            if rows % _PROGRESS_EVERY == 0:
                progress.advance(_PROGRESS_EVERY)
    if not rows:
        raise BadData(f"{source}: no rows")
    names = splits.check_labels(labels)
    index = {label: i for i, label in enumerate(names)}
    held_out = frozenset(row[0] for part in holdouts.values() for row in part.rows)
    streamed = TrainRows(
        source,
        text_column,
        label_column,
        options,
        held_out,
        rows - len(held_out),
        index,
        counted_key(spec),
        counts.counts,
        work,
    )
    return splits.LabelledData(
        source.name,
        digest.hexdigest(),
        rows,
        names,
        {label: labels[label] for label in names},
        sample.split(index),
        holdouts[_VALIDATION].split(index),
        holdouts[_TEST].split(index),
        streamed,
    )


__all__ = ["load", "wanted"]
