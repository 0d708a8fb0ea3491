"""A training file read once and trained from disk (maas.training.stream), on the bundled real
data: how it splits, what it keeps in memory, that no row is lost or read twice, and that the
training batches cover the train split exactly once an epoch in a seeded order.

TensorFlow is not needed here (the module is numpy and the maas tokenizer); the streamed
training itself is one of tests/test_training.py's runs.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maas.client.data import read_labelled
from maas.core.tokenizer import Tokenizer, TokenizerSpec
from maas.errors import BadData
from maas.training import rows as on_disk
from maas.training import splits, stream

ROOT = Path(__file__).resolve().parents[1]
REVIEWS = ROOT / "data" / "reviews-zh" / "reviews.csv"
PACKAGES = ROOT / "data" / "debian-packages" / "packages.jsonl"
SPEC = TokenizerSpec(num_words=2000, max_length=64, padding="post", truncating="post")


def load(path: Path, tmp_path: Path, seed: int = 7) -> splits.LabelledData:
    return stream.load(path, "text", "label", seed, SPEC, tmp_path)


def rows_of(data: splits.LabelledData) -> list[tuple[str, str]]:
    assert data.streamed is not None
    return list(data.streamed.texts())


@pytest.fixture
def small_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Caps far below the data, so the samples fill and rows leave them."""
    monkeypatch.setattr(stream, "HOLDOUT_ROWS", 150)
    monkeypatch.setattr(stream, "BASELINE_SAMPLE_ROWS", 400)


def test_every_row_lands_in_exactly_one_split_and_none_is_lost(
    tmp_path: Path, small_caps: None
) -> None:
    whole = read_labelled(PACKAGES)
    data = load(PACKAGES, tmp_path)
    assert data.rows == len(whole.texts) == 600
    assert data.fingerprint == whole.fingerprint()
    assert data.labels == sorted(set(whole.labels))
    assert data.label_counts == dict(Counter(whole.labels))
    assert len(data.validation.texts) == len(data.test.texts) == 60  # under the cap: 10 %
    train = rows_of(data)
    assert data.train_rows == len(train) == 600 - 120
    everything = Counter(zip(whole.texts, whole.labels, strict=True))
    held = [
        (text, data.labels[y])
        for part in (data.validation, data.test)
        for text, y in zip(part.texts, part.y.tolist(), strict=True)
    ]
    assert Counter(train) + Counter(held) == everything


def test_the_split_is_stratified_ten_rows_of_a_label_at_a_time(tmp_path: Path) -> None:
    data = load(PACKAGES, tmp_path)
    for part in (data.validation, data.test):
        counts = Counter(part.y.tolist())
        for label, n in data.label_counts.items():
            blocks = n / stream.BLOCK
            assert int(blocks) <= counts[data.labels.index(label)] <= int(blocks) + 1


def test_held_out_splits_are_capped_and_the_rest_trains(tmp_path: Path, small_caps: None) -> None:
    data = load(REVIEWS, tmp_path)
    assert data.rows == 6000
    assert len(data.validation.texts) == len(data.test.texts) == 150
    assert data.train_rows == 6000 - 300  # rows beyond the cap train: none is dropped
    assert len(data.train.texts) == 400  # the baseline's sample
    assert set(data.test.y.tolist()) == {0, 1} and set(data.validation.y.tolist()) == {0, 1}
    test_rows = set(data.test.texts)
    assert not test_rows & {text for text, _ in rows_of(data)} - set(data.validation.texts)


def test_the_baseline_sample_holds_every_label_however_rare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A uniform sample of a large file can miss a rare label, and a classifier fitted on it
    (the baseline, the default's linear path) could never predict that label: the sample is
    topped up with that label's rows. Here 12 `sound` rows among 450 others, a uniform sample
    of 20 (this seed's holds none of them) and a floor of 5 a label."""
    monkeypatch.setattr(stream, "BASELINE_SAMPLE_ROWS", 20)
    monkeypatch.setattr(stream, "BASELINE_ROWS_PER_LABEL", 5)
    lines = PACKAGES.read_text(encoding="utf-8").splitlines()
    rare = [line for line in lines if json.loads(line)["label"] == "sound"][:12]
    rest = [line for line in lines if json.loads(line)["label"] != "sound"]
    path = tmp_path / "rare.jsonl"
    path.write_text("\n".join(rest[:225] + rare + rest[225:]) + "\n", encoding="utf-8")
    data = load(path, tmp_path)
    train = Counter(label for _, label in rows_of(data))
    held = Counter(data.labels[y] for y in data.train.y.tolist())
    assert set(held) == set(data.labels)
    for label in data.labels:
        assert held[label] >= min(5, train[label])
    assert len(data.train.texts) <= 20 + 5 * len(data.labels)
    assert set(data.train.texts) <= {text for text, _ in rows_of(data)}  # train rows only


def test_the_vocabulary_is_the_one_fit_on_the_train_rows(tmp_path: Path, small_caps: None) -> None:
    data = load(REVIEWS, tmp_path)
    assert data.streamed is not None
    exact = Tokenizer.fit([text for text, _ in rows_of(data)], SPEC)
    assert data.streamed.tokenizer(SPEC).vocabulary == exact.vocabulary
    # a spec that splits texts differently is counted again, not served from the first pass
    cased = TokenizerSpec(num_words=2000, max_length=64, lowercase=False)
    assert data.streamed.tokenizer(cased).vocabulary == (
        Tokenizer.fit([text for text, _ in rows_of(data)], cased).vocabulary
    )


def test_token_counts_stay_bounded_and_keep_the_frequent_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(on_disk, "COUNTED_TOKENS", 3000)
    data = load(REVIEWS, tmp_path)
    assert data.streamed is not None
    assert len(data.streamed.counts) <= 3000
    spec = TokenizerSpec(num_words=202)
    exact = Tokenizer.fit([text for text, _ in rows_of(data)], spec).vocabulary
    bounded = data.streamed.tokenizer(spec).vocabulary
    assert bounded[:100] == exact[:100]


def test_the_split_depends_on_the_seed_only(tmp_path: Path, small_caps: None) -> None:
    first, again, other = (load(REVIEWS, tmp_path, seed) for seed in (1, 1, 2))
    assert first.test.texts == again.test.texts and first.train.texts == again.train.texts
    assert first.test.texts != other.test.texts


@pytest.fixture
def chunked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks and windows small enough that batches cross their edges."""
    monkeypatch.setattr(on_disk, "CHUNK_ROWS", 64)
    monkeypatch.setattr(on_disk, "WINDOW_CHUNKS", 3)


def epoch(batches: on_disk.ShuffledBatches) -> tuple[on_disk.Array, on_disk.Array]:
    parts = [batches.batch(i) for i in range(len(batches))]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def test_each_epoch_reads_every_train_row_once_in_a_new_seeded_order(
    tmp_path: Path, chunked: None
) -> None:
    data = load(PACKAGES, tmp_path)
    assert data.streamed is not None
    tokenizer = data.streamed.tokenizer(SPEC)
    texts, labels = zip(*rows_of(data), strict=True)
    expected = tokenizer.encode(list(texts))
    expected_y = np.asarray([data.labels.index(label) for label in labels])
    with data.streamed.encode(tokenizer) as rows:
        assert rows.rows == len(texts) and rows.chunks == -(-len(texts) // 64)
        batches = rows.batches(50, seed=3)  # 50 does not divide a chunk of 64
        assert len(batches) == -(-len(texts) // 50)
        sizes = {len(batches.batch(i)[0]) for i in range(len(batches))}
        assert sizes <= {50, len(texts) % 50}
        first = epoch(batches)
        batches.next_epoch()
        second = epoch(batches)
        again = epoch(rows.batches(50, seed=3))
    for ids, y in (first, second):
        assert ids.dtype == np.int32 and y.dtype == np.int64
        # the same rows (ids with their class), each once
        got = sorted(map(tuple, np.column_stack([ids, y]).tolist()))
        assert got == sorted(map(tuple, np.column_stack([expected, expected_y]).tolist()))
    assert not np.array_equal(first[0], second[0])  # reshuffled each epoch
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert not list(tmp_path.glob(".maas-train-rows-*")), "the encoded rows are removed"
    with pytest.raises(IndexError):
        batches.batch(len(batches))


def test_a_window_mixes_a_file_sorted_by_label(
    tmp_path: Path, chunked: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file with every negative first: a batch still sees both labels (eight chunks drawn
    from all over the file are shuffled together)."""
    monkeypatch.setattr(on_disk, "WINDOW_CHUNKS", 8)
    with REVIEWS.open(encoding="utf-8") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: row["label"])
    path = tmp_path / "sorted.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(rows)
    data = load(path, tmp_path)
    assert data.streamed is not None
    with data.streamed.encode(data.streamed.tokenizer(SPEC)) as encoded:
        batches = encoded.batches(32, seed=0)
        mixed = [len(set(batches.batch(i)[1].tolist())) == 2 for i in range(len(batches))]
    assert sum(mixed) > 0.9 * len(mixed)


def test_a_file_that_changes_between_the_passes_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    rows = [json.loads(line) for line in PACKAGES.read_text(encoding="utf-8").splitlines()]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    data = load(path, tmp_path)
    assert data.streamed is not None
    path.write_text("".join(json.dumps(r) + "\n" for r in rows[:-50]), encoding="utf-8")
    tokenizer = data.streamed.tokenizer(SPEC)
    with pytest.raises(BadData, match="changed while it was read"), data.streamed.encode(tokenizer):
        pass


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["text,label", "a,x"] * 1, "need at least 2 different labels"),
        (["text,label", "a,x", "b,"], "data.csv:3: empty label"),
        (["text,kind", "a,x"], "no 'label' column"),
        (["text,label"], "no rows"),
    ],
)
def test_bad_data_is_refused_as_in_memory(tmp_path: Path, lines: list[str], message: str) -> None:
    path = tmp_path / "data.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(BadData, match=message):
        load(path, tmp_path)


def test_large_files_stream_unless_told_and_a_json_array_never(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not stream.wanted(REVIEWS, None)  # 1.3 MB
    assert stream.wanted(REVIEWS, True) and not stream.wanted(REVIEWS, False)
    monkeypatch.setattr(stream, "STREAM_ABOVE_BYTES", 1000)
    assert stream.wanted(REVIEWS, None)
    array = tmp_path / "data.json"
    array.write_text("[" + "{}," * 1000 + "{}]", encoding="utf-8")
    assert not stream.wanted(array, None)
    with pytest.raises(BadData, match="JSON Lines"):
        stream.wanted(array, True)


@pytest.mark.parametrize("stream_flag", [True, False, None])
def test_maas_train_passes_stream_to_the_job(stream_flag: bool | None) -> None:
    """`maas train --stream` (the CLI) -> the job's command line -> the job's options."""
    from maas.cli import build_parser
    from maas.training import cli as job_cli
    from maas.training.options import TrainingOptions

    flag = {True: ["--stream"], False: ["--no-stream"], None: []}[stream_flag]
    args = build_parser().parse_args(["train", "data.csv", "--out", "model", *flag])
    options = TrainingOptions.from_args(args)
    assert options.stream is stream_flag
    assert TrainingOptions.from_args(job_cli.parser().parse_args(options.argv())) == options


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(st.text(max_size=30), st.sampled_from(["a", "b", "c", "spam ham", "负面"])),
        max_size=300,
    ),
    enough=st.booleans(),
    holdout=st.integers(1, 40),
    seed=st.integers(0, 2**31),
)
def test_any_file_is_split_whole_or_refused_with_a_reason(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    rows: list[tuple[str, str]],
    enough: bool,
    holdout: int,
    seed: int,
) -> None:
    """Any rows (any text, labels of any count): either a BadData, or every row in exactly one
    split, the held-out splits within their cap and stratified, the same split again."""
    if enough:  # ten rows of each label it has (and of two at least): a file that trains
        labels = sorted({label for _, label in rows} | {"a", "b"})
        rows = rows + [(f"row {i}", label) for label in labels for i in range(10)]
    monkeypatch.setattr(stream, "HOLDOUT_ROWS", holdout)
    path = tmp_path / "any.jsonl"
    path.write_text(
        "".join(json.dumps({"text": t, "label": label}) + "\n" for t, label in rows),
        encoding="utf-8",
    )
    counts = Counter(label for _, label in rows)
    try:
        data = load(path, tmp_path, seed)
    except BadData as exc:
        assert not enough
        assert not rows or len(counts) < 2 or min(counts.values()) < splits.MIN_ROWS_PER_LABEL
        assert str(exc)
        return
    held = [
        (text, data.labels[y])
        for part in (data.validation, data.test)
        for text, y in zip(part.texts, part.y.tolist(), strict=True)
    ]
    assert Counter(rows_of(data)) + Counter(held) == Counter(rows)
    uncapped = sum(n // stream.BLOCK + 1 for n in counts.values()) <= holdout
    for part in (data.validation, data.test):
        assert 0 < len(part.texts) <= holdout
        if uncapped:  # every label, one row in ten
            got = Counter(part.y.tolist())
            for label, n in counts.items():
                assert n // stream.BLOCK <= got[data.labels.index(label)] <= n // stream.BLOCK + 1
    again = load(path, tmp_path, seed)
    assert (again.test.texts, again.validation.texts) == (data.test.texts, data.validation.texts)
