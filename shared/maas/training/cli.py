"""`python -m maas.training DATA --out DIR ...` (what `maas train` runs in .venv-train).

Exit status, as every maas command (maas.cli): 0 done; 2 bad input or arguments; 3 quality
gate failed (the artifact is written and marked failed); 1 anything else (e.g. the TFLite
conversion failed). Errors are one line on stderr, `maas: error: ...`; epoch progress goes to
stderr too, the final summary to stdout.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from maas.errors import MaasError
from maas.exits import EXIT_ERROR, exit_status, fail
from maas.training.options import (
    AUTO,
    DEFAULT_PRESET,
    DEFAULT_SEED,
    DEFAULT_TIME_BUDGET_S,
    STREAM_ABOVE,
    TrainingOptions,
)
from maas.training.presets import PRESETS


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="maas train",
        description="Train a text classifier and write a quantized TFLite artifact.",
    )
    p.add_argument("data", type=Path, help="CSV or JSONL file with a text and a label column")
    p.add_argument("--out", type=Path, required=True, help="artifact directory to write")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--encoding", help="the file's encoding (default: UTF-8, or UTF-16 with a BOM)")
    p.add_argument("--delimiter", help="a CSV's delimiter (default: sniffed)")
    p.add_argument("--preset", choices=[*sorted(PRESETS), AUTO], default=DEFAULT_PRESET)
    p.add_argument("--time-budget", type=float, default=DEFAULT_TIME_BUDGET_S)
    p.add_argument("--cv", type=_at_least_two, help="k-fold cross-validation (default: none)")
    p.add_argument(
        "--stream",
        action=argparse.BooleanOptionalAction,
        help="read the file once and train from disk, in bounded memory (default: when the file is "
        f"over {STREAM_ABOVE}; --no-stream holds it in memory)",
    )
    p.add_argument("--epochs", type=_positive, help="maximum epochs (default: the preset's)")
    p.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="seed for the split and the training"
    )
    p.add_argument(
        "--allow-quality-drop",
        action="store_true",
        help="keep a quantized model that is more than 1 accuracy point below float",
    )
    return p


def _at_least_two(value: str) -> int:
    number = int(value)
    if number < 2:
        raise argparse.ArgumentTypeError("k-fold cross-validation needs k >= 2")
    return number


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from maas.training import job, quality

    options = TrainingOptions.from_args(args)
    try:
        manifest = job.run(options)
        print(job.summary(manifest, args.out))
        quality.enforce(manifest.quality_gate)
    except MaasError as exc:
        return fail(exc.message, exit_status(exc))
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return fail(f"{where}{exc.strerror or exc}", EXIT_ERROR)
    return 0
