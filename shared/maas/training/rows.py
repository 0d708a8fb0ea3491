"""The train split of a streamed file (`maas.training.stream`), on disk: its token counts,
its rows encoded once into a file of token ids, and the shuffled batches training reads from
that file a window at a time, so that what is in memory does not grow with the file."""

from __future__ import annotations

import math
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from maas.client.data import FileOptions, iter_labelled
from maas.core.tokenizer import Tokenizer, TokenizerSpec, iter_tokens
from maas.errors import BadData
from maas.progress import Progress

Array = npt.NDArray[Any]

# Distinct tokens counted exactly up to this many; beyond, the rarer half is dropped (a token
# that makes a 20,000-word vocabulary is far more frequent than the ones dropped).
COUNTED_TOKENS = 500_000
CHUNK_ROWS = 4096  # rows read from the encoded file at once
WINDOW_CHUNKS = 16  # chunks shuffled together: 65,536 rows, drawn from all over the file


class TokenCounts:
    """Token counts for the vocabulary, in bounded memory (`COUNTED_TOKENS`)."""

    def __init__(self, spec: TokenizerSpec) -> None:
        self.spec, self.limit = spec, COUNTED_TOKENS
        self.counts: Counter[str] = Counter()

    def add(self, text: str) -> None:
        self.counts.update(iter_tokens(text, self.spec))
        if len(self.counts) > self.limit:
            ranked = sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))
            self.counts = Counter(dict(ranked[: self.limit // 2]))


def counted_key(spec: TokenizerSpec) -> tuple[bool, tuple[int, ...], tuple[int, ...]]:
    """What decides a text's tokens (not which of them are kept, nor the length)."""
    return spec.lowercase, spec.cjk_ngrams, spec.subword_ngrams


@dataclass(frozen=True)
class TrainRows:
    """The train split of a streamed file: every row not held out, read again from the file."""

    path: Path
    text_column: str
    label_column: str
    options: FileOptions
    held_out: frozenset[int]  # row numbers (from 0) of the validation and test rows
    rows: int
    label_index: dict[str, int]
    counted_key: tuple[bool, tuple[int, ...], tuple[int, ...]]
    counts: Counter[str]  # the train rows' tokens, as `counted_key` splits them

    work: Path  # where the encoded rows are written (beside the artifact)

    def texts(self) -> Iterator[tuple[str, str]]:
        """(text, label) of each train row, in file order."""
        rows = iter_labelled(self.path, self.text_column, self.label_column, self.options)
        for number, (_, text, label) in enumerate(rows):
            if number not in self.held_out:
                yield text, label

    def tokenizer(self, spec: TokenizerSpec) -> Tokenizer:
        """`Tokenizer.fit` on the train rows (from the counts of the first pass when the spec
        splits texts as the one counted with; else one more pass)."""
        if counted_key(spec) == self.counted_key:
            return Tokenizer.from_counts(self.counts, spec)
        counts = TokenCounts(spec)
        for text, _ in self.texts():
            counts.add(text)
        return Tokenizer.from_counts(counts.counts, spec)

    @contextmanager
    def encode(self, tokenizer: Tokenizer) -> Iterator[EncodedRows]:
        """The train rows' ids and class ids in a temporary file, for as long as it is open."""
        width = tokenizer.spec.max_length
        dtype = np.dtype(np.uint16 if tokenizer.spec.num_words <= 1 << 16 else np.int32)
        self.work.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".maas-train-rows-", dir=self.work) as folder:
            encoded = EncodedRows(Path(folder), self.rows, width, dtype)
            written = 0
            with (
                encoded.ids_path.open("wb") as ids,
                encoded.labels_path.open("wb") as labels,
                Progress("encoding the train split", self.rows, "row") as progress,
            ):
                for texts, classes in _chunks(self.texts(), self.label_index):
                    tokenizer.encode(texts).astype(dtype).tofile(ids)
                    np.asarray(classes, dtype=np.int32).tofile(labels)
                    written += len(texts)
                    progress.advance(len(texts))
            if written != self.rows:
                raise BadData(
                    f"{self.path.name}: changed while it was read ({written:,} train rows on the "
                    f"second pass, {self.rows:,} on the first)"
                )
            yield encoded


def _chunks(
    rows: Iterator[tuple[str, str]], index: dict[str, int]
) -> Iterator[tuple[list[str], list[int]]]:
    texts: list[str] = []
    classes: list[int] = []
    for text, label in rows:
        if label not in index:
            raise BadData(f"label {label!r} was not in the file on the first pass")
        texts.append(text)
        classes.append(index[label])
        if len(texts) == CHUNK_ROWS:
            yield texts, classes
            texts, classes = [], []
    if texts:
        yield texts, classes


@dataclass(frozen=True)
class EncodedRows:
    """Rows of token ids (`width` each) and their class ids, in two flat files."""

    folder: Path
    rows: int
    width: int
    dtype: np.dtype[Any]

    @property
    def ids_path(self) -> Path:
        return self.folder / "ids.bin"

    @property
    def labels_path(self) -> Path:
        return self.folder / "labels.bin"

    @property
    def chunks(self) -> int:
        return math.ceil(self.rows / CHUNK_ROWS)

    def chunk(self, number: int) -> tuple[Array, Array]:
        """Chunk `number`: (ids, class ids) as stored, read from the files (not mapped, so the
        pages read are not counted against the process)."""
        start = number * CHUNK_ROWS
        count = min(CHUNK_ROWS, self.rows - start)
        ids = np.fromfile(
            self.ids_path,
            dtype=self.dtype,
            count=count * self.width,
            offset=start * self.width * self.dtype.itemsize,
        )
        labels = np.fromfile(self.labels_path, dtype=np.int32, count=count, offset=start * 4)
        return ids.reshape(count, self.width), labels

    def batches(self, batch_size: int, seed: int) -> ShuffledBatches:
        return ShuffledBatches(self, batch_size, seed)


class ShuffledBatches:
    """An epoch's batches of `EncodedRows`, in a seeded order that changes each epoch: the
    chunks in random order, taken `WINDOW_CHUNKS` at a time, the rows of a window shuffled
    together. Batches are read in order (`batch(i)` for i = 0, 1, ...); one window is in
    memory (two while a batch crosses from one to the next)."""

    def __init__(self, rows: EncodedRows, batch_size: int, seed: int) -> None:
        self.rows, self.batch_size, self.seed = rows, batch_size, seed
        self.epoch = 0
        self._plan()

    def __len__(self) -> int:
        return math.ceil(self.rows.rows / self.batch_size)

    def next_epoch(self) -> None:
        self.epoch += 1
        self._plan()

    def _plan(self) -> None:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.rows.chunks)
        self._windows = [order[i : i + WINDOW_CHUNKS] for i in range(0, len(order), WINDOW_CHUNKS)]
        sizes = [
            sum(min(CHUNK_ROWS, self.rows.rows - c * CHUNK_ROWS) for c in window)
            for window in self._windows
        ]
        self._starts = np.cumsum([0, *sizes])
        self._loaded: dict[int, tuple[Array, Array]] = {}

    def _window(self, number: int) -> tuple[Array, Array]:
        """Window `number`'s rows, shuffled, as stored (2 bytes a token, widened per batch)."""
        if number not in self._loaded:
            size = int(self._starts[number + 1] - self._starts[number])
            ids = np.empty((size, self.rows.width), dtype=self.rows.dtype)
            labels = np.empty(size, dtype=np.int32)
            at = 0
            for chunk in self._windows[number]:
                x, y = self.rows.chunk(int(chunk))
                ids[at : at + len(x)], labels[at : at + len(x)] = x, y
                at += len(x)
            shuffle = np.random.default_rng([self.seed, self.epoch, number]).permutation(size)
            self._loaded[number] = ids[shuffle], labels[shuffle]
        return self._loaded[number]

    def batch(self, index: int) -> tuple[Array, Array]:
        """Batch `index`: (ids as int32, class ids as int64)."""
        start = index * self.batch_size
        stop = min(start + self.batch_size, self.rows.rows)
        if not 0 <= start < stop:
            raise IndexError(f"batch {index} of {len(self)}")
        window = int(np.searchsorted(self._starts, start, side="right")) - 1
        for passed in [n for n in self._loaded if n < window]:
            del self._loaded[passed]  # read in order: one window in memory, two across an edge
        ids, labels = [], []
        while start < stop:
            x, y = self._window(window)
            offset = start - int(self._starts[window])
            take = min(stop - start, len(x) - offset)
            ids.append(x[offset : offset + take])
            labels.append(y[offset : offset + take])
            start += take
            window += 1
        return (
            np.concatenate(ids).astype(np.int32),
            np.concatenate(labels).astype(np.int64),
        )


__all__ = ["EncodedRows", "ShuffledBatches", "TokenCounts", "TrainRows", "counted_key"]
