"""One progress display for long work - training epochs, uploads, batch submission, batch
work: tqdm's bar on stderr when it is a terminal (or MAAS_PROGRESS=1 says so), nothing
otherwise, so logs and pipes stay clean."""

from __future__ import annotations

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
                dynamic_ncols=True,
                leave=True,
            )

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
