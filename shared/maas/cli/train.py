"""`maas train`: the training job in the training environment, then the serving runtime's check."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from maas.cli.common import note


def add_parser(commands: Any) -> None:
    train = commands.add_parser(
        "train", help="train a classifier and export a quantized TFLite artifact"
    )
    train.add_argument(
        "data", type=Path, metavar="DATA", help="CSV or JSONL with text and label columns"
    )
    train.add_argument("--out", type=Path, required=True, help="artifact directory to create")
    train.add_argument("--text-column")
    train.add_argument("--label-column")
    train.add_argument("--preset", choices=("default", "seed"))
    train.add_argument("--epochs", type=int)
    train.add_argument("--seed", type=int)
    train.add_argument(
        "--allow-quality-drop",
        action="store_true",
        help="keep an artifact whose quantized accuracy is >1 point below float",
    )
    train.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from maas.client.training import run_job
    from maas.store.publishing import verify_artifact
    from maas.training.options import TrainingOptions

    status = run_job(TrainingOptions.from_args(args))
    if status != 0:
        return status
    # The training environment checked the model with LiteRT; check it again with the runtime
    # the Lambda functions use before anyone publishes it.
    verified = verify_artifact(args.out, allow_quality_drop=args.allow_quality_drop)
    note(f"verified with {verified.runtime}: golden examples within {verified.max_abs_diff:.1e}")
    return 0
