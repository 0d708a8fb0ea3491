"""What every command shares: how results and errors are printed, progress bars, the help text
of common options."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from maas.client.settings import ClientSettings

if TYPE_CHECKING:
    from maas.store.registry import ModelStore

STORE_HELP = "a directory, file:// or s3://BUCKET/PREFIX (default: $MAAS_STORE, then .maas/store)"
MODEL_HELP = "NAME, NAME@ALIAS or NAME:VERSION"


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")


def note(line: str) -> None:
    """A line for the person at the terminal (stderr: stdout is for results)."""
    print(line, file=sys.stderr)


def warn(line: str) -> None:
    print(f"maas: warning: {line}", file=sys.stderr)


def store_uri(option: str | None) -> str:
    """--store, else $MAAS_STORE, else .maas/store."""
    return option or ClientSettings.from_env().store


def open_store(uri: str | None, *, publishing: bool = False) -> ModelStore:
    """The store a command names, with the signing key of $MAAS_SIGNING_KEY (default: the
    key file in the user's configuration, which publishing creates when it is missing)."""
    from maas.store.registry import ModelStore
    from maas.store.signing import open_signer

    signer = open_signer(ClientSettings.from_env().signing_key, create=publishing)
    return ModelStore.open(store_uri(uri), signer)


def progress_bar(label: str, total: int) -> Callable[[int], None]:
    """A one-line progress bar on stderr (only when stderr is a terminal, or MAAS_PROGRESS=1)."""
    done = 0
    shown = ClientSettings.from_env().progress
    interactive = sys.stderr.isatty() if shown is None else shown

    def advance(amount: int) -> None:
        nonlocal done
        done += amount
        if not interactive or total <= 0:
            return
        filled = int(30 * min(done, total) / total)
        sys.stderr.write(
            f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {min(done, total)}/{total}"
        )
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return advance
