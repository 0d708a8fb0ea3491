"""How a failure ends a process - the `maas` command and the training job alike: one line on
stderr, `maas: error: <what and why>`, and an exit status by the kind of failure (the table is
in maas.cli's docstring)."""

from __future__ import annotations

import sys

from maas.errors import (
    InvalidInput,
    InvalidModelRef,
    MaasError,
    ModelNotFound,
    ModelRejected,
    QualityGateFailed,
)

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_INTERRUPTED = 130


def describe(error: MaasError) -> str:
    """The line a person reads: the message, and where a model was looked for."""
    if isinstance(error, ModelNotFound) and error.store:
        return f"{error.message} (in {error.store})"
    return error.message


def exit_status(error: MaasError) -> int:
    if isinstance(error, QualityGateFailed | ModelRejected):
        return EXIT_REFUSED
    if isinstance(error, InvalidInput | InvalidModelRef | ModelNotFound):
        return EXIT_USAGE
    return EXIT_ERROR


def fail(message: str, status: int) -> int:
    """The one way a command reports a failure."""
    line = " ".join(message.split())  # one line, whatever the message held
    print(f"maas: error: {line}", file=sys.stderr)
    return status
