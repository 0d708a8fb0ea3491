"""The `maas` command line: train, publish, models, promote, predict, evaluate, demo, batch.

One module per command group (`train`, `models`, `predict`, `batch`, `demo`); each adds its
parsers and calls library functions. Every command that predicts goes through
`maas.core.classifier.Classifier`, the code the Lambda functions run. Errors end the process
with a non-zero status and one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from maas.cli import batch, demo, models, predict, train
from maas.errors import MaasError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maas", description="Text-classification models as a service."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train.add_parser(commands)
    models.add_parsers(commands)
    predict.add_parsers(commands)
    demo.add_parser(commands)
    batch.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except MaasError as exc:
        print(f"maas: error: {exc.message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("maas: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


__all__ = ["build_parser", "main"]
