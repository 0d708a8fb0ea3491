"""`maas completion bash|zsh|tcsh`: a shell completion script, from the parser itself."""

from __future__ import annotations

import argparse
from typing import Any

from maas.cli.common import command

SHELLS = ("bash", "zsh", "tcsh")


def add_parser(commands: Any, root: argparse.ArgumentParser) -> None:
    completion = command(
        commands,
        "completion",
        "print a shell completion script",
        "Print a completion script for SHELL. bash: `maas completion bash > "
        "~/.local/share/bash-completion/completions/maas`; zsh: put it in a directory on "
        "$fpath as _maas.",
    )
    completion.add_argument("shell", choices=SHELLS, help="the shell")
    completion.set_defaults(func=run, root=root)


def run(args: argparse.Namespace) -> int:
    import shtab

    print(shtab.complete(args.root, shell=args.shell))
    return 0
