"""Reading labelled (or unlabelled) texts from CSV or JSON Lines files."""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maas.core import jsontext
from maas.errors import BadData, MaasError

csv.field_size_limit(sys.maxsize)


@dataclass(frozen=True)
class Dataset:
    texts: list[str]
    labels: list[str]
    source: str

    def fingerprint(self) -> str:
        """sha256 over the (text, label) rows, independent of the file's format."""
        digest = hashlib.sha256()
        for text, label in zip(self.texts, self.labels, strict=True):
            digest.update(json.dumps([text, label], ensure_ascii=False).encode("utf-8"))
            digest.update(b"\n")
        return digest.hexdigest()


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    raise BadData(f"{path.name}: unknown file type {suffix!r}; use .csv or .jsonl")


def iter_records(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for each row of a CSV (with a header) or JSONL file."""
    path = Path(path)
    if not path.is_file():
        raise BadData(f"{path}: no such file")
    try:
        yield from _records(path)
    except UnicodeDecodeError as exc:
        raise BadData(
            f"{path.name}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start} of a block); save the file as UTF-8"
        ) from None
    except csv.Error as exc:
        raise BadData(f"{path.name}: not readable as CSV ({exc})") from None


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        if _format(path) == "csv":
            dialect = "excel-tab" if path.suffix.lower() == ".tsv" else "excel"
            reader = csv.DictReader(handle, dialect=dialect)
            for row in reader:
                yield reader.line_num, row
            return
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = jsontext.loads(line, f"{path.name}:{number}")
            except MaasError as exc:
                raise BadData(exc.message) from None
            if not isinstance(record, dict):
                raise BadData(f"{path.name}:{number}: expected a JSON object")
            yield number, record


def _field(path: Path, number: int, record: dict[str, Any], column: str) -> str:
    if column not in record or record[column] is None:
        found = ", ".join(map(str, record)) or "none"
        raise BadData(
            f"{path.name}:{number}: no {column!r} column (found: {found}); "
            "name the columns with --text-column / --label-column",
        )
    value = record[column]
    if isinstance(value, str):
        return value
    return str(value) if isinstance(value, int | float) else json.dumps(value, ensure_ascii=False)


def read_texts(path: str | Path, text_column: str = "text") -> list[str]:
    source = Path(path)
    return [_field(source, n, record, text_column) for n, record in iter_records(source)]


def read_labelled(
    path: str | Path, text_column: str = "text", label_column: str = "label"
) -> Dataset:
    """All rows, in file order. Every row needs a non-empty label; texts may be empty."""
    source = Path(path)
    texts, labels = [], []
    for number, record in iter_records(source):
        text = _field(source, number, record, text_column)
        label = _field(source, number, record, label_column).strip()
        if not label:
            raise BadData(f"{source.name}:{number}: empty label")
        texts.append(text)
        labels.append(label)
    if not texts:
        raise BadData(f"{source}: no rows")
    return Dataset(texts, labels, source.name)
