"""The `maas` command line: train, publish, models, promote, predict, evaluate, demo, batch.

One module per command group (`train`, `models`, `predict`, `batch`, `demo`); each adds its
parsers and calls library functions. Every command that predicts goes through
`maas.core.classifier.Classifier`, the code the Lambda functions run.

Every command fails the same way: one line on stderr, `maas: error: <what and why>`, and an
exit status that says which kind of failure it was:

    0    done
    1    it could not be done (store or queue unreachable, misconfigured, a bug)
    2    the command line or an input is wrong (usage, a data file, a model reference)
    3    a model was refused by a check (quality gate, signature, integrity, golden examples)
    130  interrupted

The training job (`python -m maas.training`) follows the same policy. MAAS_DEBUG=1 adds the
traceback of an unexpected error.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from maas import __version__
from maas.cli import alias, batch, completion, demo, models, predict, serve, train
from maas.cli.common import HelpFormatter
from maas.client.settings import ClientSettings
from maas.errors import MaasError
from maas.exits import EXIT_ERROR, EXIT_INTERRUPTED, describe, exit_status, fail


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maas",
        description="Text-classification models as a service: train, publish, serve, classify.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"maas {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train.add_parser(commands)
    models.add_parsers(commands)
    alias.add_parser(commands)
    predict.add_parsers(commands)
    serve.add_parser(commands)
    batch.add_parser(commands)
    demo.add_parser(commands, parser)
    completion.add_parser(commands, parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except MaasError as exc:
        return fail(describe(exc), exit_status(exc))
    except KeyboardInterrupt:
        print("maas: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `maas predict ... | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return fail(f"{where}{exc.strerror or exc}", EXIT_ERROR)
    except Exception as exc:  # a bug: still one line, the traceback on request
        if ClientSettings.from_env().debug:
            traceback.print_exc()
        return fail(
            f"internal error ({type(exc).__name__}: {exc}); MAAS_DEBUG=1 shows the traceback",
            EXIT_ERROR,
        )


__all__ = ["build_parser", "main"]
