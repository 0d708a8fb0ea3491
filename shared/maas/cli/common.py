"""What every command shares: how results and errors are printed, progress, the help text of
common options, and opening the store a command names."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maas.client.settings import ClientSettings
from maas.progress import Progress

if TYPE_CHECKING:
    from maas.client.data import FileOptions
    from maas.store.registry import ModelStore

STORE_HELP = "a directory, file:// or s3://BUCKET/PREFIX (default: $MAAS_STORE, then .maas/store)"
REASON_HELP = "why (kept in the alias's history; default: none)"
MODEL_HELP = "NAME, NAME@ALIAS or NAME:VERSION (a bare NAME: its production alias, else latest)"


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help says its default: the value, or in words where it has none."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        quiet = (None, False, argparse.SUPPRESS)
        if "(default" in text or action.default in quiet or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def command(commands: Any, name: str, help: str, description: str | None = None) -> Any:
    """A subcommand with the common formatter."""
    return commands.add_parser(
        name,
        help=help,
        description=description or help[:1].upper() + help[1:] + ".",
        formatter_class=HelpFormatter,
    )


def add_file_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--encoding",
        metavar="NAME",
        help="the file's text encoding (default: UTF-8, or UTF-16 with a byte-order mark)",
    )
    parser.add_argument(
        "--delimiter",
        metavar="CHAR",
        help="a CSV's delimiter (default: sniffed from the header: , ; tab or |)",
    )


def file_options(args: argparse.Namespace) -> FileOptions:
    from maas.client.data import FileOptions

    return FileOptions(encoding=args.encoding, delimiter=args.delimiter)


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

    settings = ClientSettings.from_env()
    signer = open_signer(settings.signing_key, create=publishing)
    return ModelStore.open(store_uri(uri), signer, actor=settings.actor)


def progress(label: str, total: int | None, unit: str = "") -> Progress:
    return Progress(label, total, unit, ClientSettings.from_env().progress)


def directory_size(directory: Path) -> int:
    return sum(f.stat().st_size for f in directory.iterdir() if f.is_file())
