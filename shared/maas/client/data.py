"""Reading labelled (or unlabelled) texts from CSV, TSV, JSON Lines or JSON files.

What a user's file may be and what this reader does about it:

- the encoding: UTF-8 (with or without a byte-order mark) or UTF-16 with one, recognised by
  itself; anything else is named with `--encoding` (a file that is not what it is said to be
  is refused with the offending byte and a hint);
- the delimiter of a CSV: `,`, `;`, tab or `|`, sniffed from its header line (or `--delimiter`);
- JSON: one object per line (`.jsonl`), or one array of objects (`.json`);
- every error names the file and the line, and says what to change.

Records come one at a time (the training job reads large files in one pass).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from maas.core import jsontext
from maas.errors import BadData, MaasError

csv.field_size_limit(sys.maxsize)

DELIMITERS = ",;\t|"
_SNIFF_BYTES = 64 * 1024


@dataclass(frozen=True)
class FileOptions:
    """How to read a data file; None: recognised from the file."""

    encoding: str | None = None
    delimiter: str | None = None

    def __post_init__(self) -> None:
        if self.encoding is not None:
            try:
                codecs.lookup(self.encoding)
            except LookupError:
                raise BadData(f"unknown encoding {self.encoding!r} (--encoding)") from None
        if self.delimiter is not None and len(self.delimiter) != 1:
            raise BadData(f"--delimiter must be one character, not {self.delimiter!r}")


AUTO = FileOptions()


@dataclass(frozen=True)
class Dataset:
    texts: list[str]
    labels: list[str]
    source: str

    def fingerprint(self) -> str:
        """sha256 over the (text, label) rows, independent of the file's format."""
        digest = RowDigest()
        for text, label in zip(self.texts, self.labels, strict=True):
            digest.add(text, label)
        return digest.hexdigest()


class RowDigest:
    """`Dataset.fingerprint`, a row at a time (for a file read in one pass, never held)."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()

    def add(self, text: str, label: str) -> None:
        self._digest.update(json.dumps([text, label], ensure_ascii=False).encode("utf-8"))
        self._digest.update(b"\n")

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        return "json"
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    raise BadData(
        f"{path.name}: unknown file type {suffix or '(none)'!r}; use .csv, .tsv, .jsonl or .json"
    )


def _encoding(path: Path, options: FileOptions) -> str:
    if options.encoding:
        return options.encoding
    with path.open("rb") as handle:
        head = handle.read(4)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8-sig"  # UTF-8, a byte-order mark dropped if there is one


def _delimiter(path: Path, handle: IO[str], options: FileOptions) -> str:
    if options.delimiter:
        return options.delimiter
    if path.suffix.lower() == ".tsv":
        return "\t"
    sample = handle.read(_SNIFF_BYTES)
    handle.seek(0)
    header = sample.splitlines()[0] if sample else ""
    try:
        return csv.Sniffer().sniff(header, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","  # one column, or nothing to tell from: the default


def iter_records(
    path: str | Path, options: FileOptions = AUTO
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for each row of a CSV (with a header) or JSONL file, or each
    object of a JSON array."""
    path = Path(path)
    if not path.is_file():
        raise BadData(f"{path}: no such file")
    encoding = _encoding(path, options)
    try:
        yield from _records(path, encoding, options)
    except UnicodeDecodeError as exc:
        raise BadData(
            f"{path.name}: not {exc.encoding.upper()} text (byte 0x{exc.object[exc.start]:02x} "
            f"near offset {exc.start}); name its encoding with --encoding (e.g. latin-1, gb18030)"
        ) from None
    except csv.Error as exc:
        raise BadData(f"{path.name}: not readable as CSV ({exc})") from None


def _records(
    path: Path, encoding: str, options: FileOptions
) -> Iterator[tuple[int, dict[str, Any]]]:
    kind = _format(path)
    with path.open(encoding=encoding, newline="") as handle:
        if kind == "csv":
            yield from _csv_records(path, handle, options)
        elif kind == "json":
            yield from _json_array(path, handle)
        else:
            yield from _jsonl_records(path, handle)


def _csv_records(
    path: Path, handle: IO[str], options: FileOptions
) -> Iterator[tuple[int, dict[str, Any]]]:
    delimiter = _delimiter(path, handle, options)
    reader = csv.DictReader(handle, delimiter=delimiter, restkey="\0extra")
    started = 2  # the line a record starts on (a quoted field may span lines)
    for row in reader:
        if any(value is None for value in row.values()) or "\0extra" in row:
            fields = len([v for v in row.values() if v is not None])
            header = len(reader.fieldnames or [])
            # A field that swallowed line ends is a quote left open (csv reads on to the
            # next quote, or to the end of the file).
            joined = any("\n" in value for value in row.values() if isinstance(value, str))
            quote = (
                f"; a quote opened on line {started} is never closed"
                if joined or reader.line_num - started > 1
                else ""
            )
            raise BadData(
                f"{path.name}:{started}: this row has {fields} fields, the header "
                f"{header} (delimiter {delimiter!r}; choose another with --delimiter){quote}"
            )
        yield started, row
        started = reader.line_num + 1


def _jsonl_records(path: Path, handle: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(handle, 1):
        if not line.strip():
            continue
        try:
            record = jsontext.loads(line, f"{path.name}:{number}")
        except MaasError as exc:
            raise BadData(exc.message) from None
        if isinstance(record, list) and number == 1:
            raise BadData(
                f"{path.name}:1: a JSON array; JSON Lines holds one object per line (save an "
                "array of objects as .json to read it whole)"
            )
        if not isinstance(record, dict):
            raise BadData(f"{path.name}:{number}: expected a JSON object, not {_kind(record)}")
        yield number, record


def _json_array(path: Path, handle: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    text = handle.read()
    try:
        doc = jsontext.loads(text, path.name)
    except MaasError as exc:
        raise BadData(exc.message) from None
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        raise BadData(f"{path.name}: expected an array of objects, not {_kind(doc)}")
    for number, record in enumerate(doc, 1):
        if not isinstance(record, dict):
            raise BadData(f"{path.name}: item {number} is {_kind(record)}, not an object")
        yield number, record


def _kind(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


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


def read_texts(
    path: str | Path, text_column: str = "text", options: FileOptions = AUTO
) -> list[str]:
    source = Path(path)
    return [_field(source, n, record, text_column) for n, record in iter_records(source, options)]


def iter_labelled(
    path: str | Path,
    text_column: str = "text",
    label_column: str = "label",
    options: FileOptions = AUTO,
) -> Iterator[tuple[int, str, str]]:
    """(line number, text, label) for each row, in file order. Every row needs a non-empty
    label; texts may be empty."""
    source = Path(path)
    for number, record in iter_records(source, options):
        text = _field(source, number, record, text_column)
        label = _field(source, number, record, label_column).strip()
        if not label:
            raise BadData(f"{source.name}:{number}: empty label")
        yield number, text, label


def read_labelled(
    path: str | Path,
    text_column: str = "text",
    label_column: str = "label",
    options: FileOptions = AUTO,
) -> Dataset:
    """All rows (`iter_labelled`), held in memory."""
    texts, labels = [], []
    for _, text, label in iter_labelled(path, text_column, label_column, options):
        texts.append(text)
        labels.append(label)
    if not texts:
        raise BadData(f"{path}: no rows")
    return Dataset(texts, labels, Path(path).name)


__all__ = [
    "AUTO",
    "Dataset",
    "FileOptions",
    "RowDigest",
    "iter_labelled",
    "iter_records",
    "read_labelled",
    "read_texts",
]
