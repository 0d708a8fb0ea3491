"""One progress display for long work - training epochs, uploads, batch submission, batch
work: tqdm's bar on stderr when it is a terminal (or MAAS_PROGRESS=1 says so), nothing
otherwise, so logs and pipes stay clean."""

from __future__ import annotations

import os
import sys
from typing import Any


class Progress:
    """A bar that counts `total` units; `advance(n)` moves it, `close()` ends it."""

    def __init__(self, label: str, total: int | None, unit: str = "", shown: bool | None = None):
        enabled = sys.stderr.isatty() if shown is None else shown
        self._bar: Any = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                desc=label,
                unit=unit or "it",
                unit_scale=unit == "B",
                file=sys.stderr,
                # a terminal that reports no width (a bare pty) gets 80 columns, not none
                ncols=None if _columns() else 80,
                dynamic_ncols=bool(_columns()),
                leave=True,
            )

    @property
    def shown(self) -> bool:
        return self._bar is not None

    def advance(self, amount: int = 1, **postfix: Any) -> None:
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
            self._bar.update(amount)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _columns() -> int:
    """The width of the terminal stderr is (0: unknown, or not a terminal)."""
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 0


def counted(number: int, noun: str) -> str:
    """'1 text', '2 texts': a count for a person to read."""
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"
