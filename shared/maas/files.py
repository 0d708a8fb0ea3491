"""Local files that a reader never sees half-written: the local store's objects, the results
sink's documents, batch records and result files all go through `atomic_file`."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal, overload

from maas.errors import VersionConflict


@overload
def atomic_file(
    path: Path, mode: Literal["wb"], *, exclusive: bool = ...
) -> contextlib.AbstractContextManager[IO[bytes]]: ...
@overload
def atomic_file(
    path: Path, mode: Literal["w"] = ..., *, exclusive: bool = ...
) -> contextlib.AbstractContextManager[IO[str]]: ...
def atomic_file(path: Path, mode: str = "w", *, exclusive: bool = False) -> Any:
    """Write to a temporary file next to `path`, then move it into place when the block ends
    without an error. `exclusive`: fail with VersionConflict when `path` exists (link(2) is
    atomic: of two writers, exactly one wins)."""
    return _atomic_file(path, mode, exclusive)


@contextlib.contextmanager
def _atomic_file(path: Path, mode: str, exclusive: bool) -> Iterator[IO[Any]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        encoding, newline = ("utf-8", "") if mode == "w" else (None, None)
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as handle:
            yield handle
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError as exc:
                raise VersionConflict(f"{path} exists already") from exc
        else:
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_atomically(path: Path, data: bytes | str, *, exclusive: bool = False) -> None:
    if isinstance(data, bytes):
        with atomic_file(path, "wb", exclusive=exclusive) as handle:
            handle.write(data)
    else:
        with atomic_file(path, "w", exclusive=exclusive) as text:
            text.write(data)
