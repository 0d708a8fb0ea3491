"""`maas train`: the training job in the training environment, then the serving runtime's check."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from maas.cli.common import add_file_options, command, note
from maas.errors import InvalidInput
from maas.training.options import (
    AUTO,
    DEFAULT_PRESET,
    DEFAULT_SEED,
    DEFAULT_TIME_BUDGET_S,
    PRESET_NAMES,
)


def add_parser(commands: Any) -> None:
    train = command(
        commands,
        "train",
        "train a classifier and export a quantized TFLite artifact",
        "Train a text classifier (in the training environment) and export a verified, "
        "quantized TFLite artifact: model, tokenizer, manifest, model card.",
    )
    train.add_argument(
        "data", type=Path, metavar="DATA", help="CSV, TSV, JSONL or JSON with texts and labels"
    )
    train.add_argument(
        "--out", metavar="DIR", type=Path, required=True, help="artifact directory to write"
    )
    train.add_argument(
        "--text-column", metavar="COLUMN", default="text", help="the texts' column or field"
    )
    train.add_argument(
        "--label-column", metavar="COLUMN", default="label", help="the labels' column or field"
    )
    add_file_options(train)
    train.add_argument(
        "--preset",
        choices=[*PRESET_NAMES, AUTO],
        default=DEFAULT_PRESET,
        help="model architecture; auto: train several within --time-budget and keep the best "
        "on the validation split",
    )
    train.add_argument(
        "--time-budget",
        metavar="SECONDS",
        type=float,
        default=DEFAULT_TIME_BUDGET_S,
        help="--preset auto: seconds of training to spend on candidates",
    )
    train.add_argument(
        "--cv",
        metavar="K",
        type=int,
        help="also cross-validate the preset k-fold on train + validation (default: no; K "
        "more trainings)",
    )
    train.add_argument(
        "--epochs", metavar="N", type=int, help="most epochs (default: the preset's)"
    )
    train.add_argument(
        "--seed",
        metavar="N",
        type=int,
        default=DEFAULT_SEED,
        help="seed of the split and the training",
    )
    train.add_argument(
        "--allow-quality-drop",
        action="store_true",
        help="keep an artifact whose quantized accuracy is more than 1 point (or one test "
        "text) below float",
    )
    train.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from maas.client.training import run_job
    from maas.store.publishing import adopt_serving_runtime, verify_artifact
    from maas.training.options import TrainingOptions

    if args.cv is not None and args.cv < 2:
        raise InvalidInput(f"--cv {args.cv}: k-fold cross-validation needs K >= 2")
    if args.time_budget <= 0:
        raise InvalidInput("--time-budget must be a number of seconds above 0")
    status = run_job(TrainingOptions.from_args(args))
    if status != 0:
        return status
    # The training environment checked the model with LiteRT; the runtime the Lambda functions
    # use re-records the golden examples (within CROSS_RUNTIME_TOLERANCE of LiteRT's), then the
    # artifact is verified as `maas publish` will verify it.
    adopted = adopt_serving_runtime(args.out)
    verify_artifact(args.out, allow_quality_drop=args.allow_quality_drop)
    note(
        f"verified with {adopted.runtime}: golden examples within {adopted.max_abs_diff:.1e} "
        "of the training runtime's"
    )
    return 0
