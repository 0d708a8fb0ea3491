"""`maas train`: the training job in the training environment, then the serving runtime's check."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from maas.cli.common import STORE_HELP, add_file_options, command, note, progress
from maas.client.settings import ClientSettings
from maas.errors import InvalidInput
from maas.training.options import (
    AUTO,
    DEFAULT_PRESET,
    DEFAULT_SEED,
    DEFAULT_TIME_BUDGET_S,
    PRESET_NAMES,
    STREAM_ABOVE,
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
        "--stream",
        action=argparse.BooleanOptionalAction,
        help="read the file once and train from disk, in bounded memory (default: when the file is "
        f"over {STREAM_ABOVE}; --no-stream holds it in memory)",
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
    where = train.add_argument_group(
        "training on SageMaker (--on sagemaker; credentials and region from the AWS chain)"
    )
    where.add_argument(
        "--on",
        choices=["local", "sagemaker"],
        default="local",
        help="where the job runs (default: local, in the training environment)",
    )
    where.add_argument(
        "--role",
        metavar="ARN",
        help="the IAM role the SageMaker job assumes (default: none; required with --on sagemaker)",
    )
    where.add_argument(
        "--image",
        metavar="URI",
        help="the training image in ECR, built from infra/training/Dockerfile "
        "(default: $MAAS_TRAINING_IMAGE)",
    )
    where.add_argument(
        "--s3",
        metavar="URI",
        help="s3://BUCKET[/PREFIX] for the job's input and output (default: none; required "
        "with --on sagemaker)",
    )
    where.add_argument(
        "--instance-type",
        metavar="TYPE",
        default="ml.g5.xlarge",
        help="the SageMaker instance type (default: ml.g5.xlarge, one NVIDIA A10G)",
    )
    where.add_argument(
        "--spot", action="store_true", help="use managed spot capacity (cheaper, may wait)"
    )
    where.add_argument(
        "--job-name", metavar="NAME", help="the job's name (default: maas-DATA-TIME)"
    )
    where.add_argument(
        "--max-runtime",
        metavar="SECONDS",
        type=int,
        default=4 * 3600,
        help="stop the job after this long (default: 14400)",
    )
    where.add_argument(
        "--publish",
        metavar="NAME",
        help="after the check, publish the artifact as the next version of NAME "
        "(default: do not publish)",
    )
    where.add_argument("--store", metavar="URI", help="--publish: " + STORE_HELP)
    where.add_argument("--alias", help="--publish: also point this alias at it (default: none)")
    train.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from maas.client.training import run_job
    from maas.store.publishing import adopt_serving_runtime, verify_artifact
    from maas.training.options import TrainingOptions

    if args.cv is not None and args.cv < 2:
        raise InvalidInput(f"--cv {args.cv}: k-fold cross-validation needs K >= 2")
    if args.time_budget <= 0:
        raise InvalidInput("--time-budget must be a number of seconds above 0")
    options = TrainingOptions.from_args(args)
    if args.on == "sagemaker":
        on_sagemaker(args, options)
    else:
        status = run_job(options)
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
    if args.publish:
        from maas.cli.models import publish_artifact

        publish_artifact(
            args.out, args.store, args.publish, args.alias, args.allow_quality_drop, reuse=False
        )
    return 0


def on_sagemaker(args: argparse.Namespace, options: Any) -> None:
    from maas.client import sagemaker

    if not args.role or not args.s3:
        raise InvalidInput("--on sagemaker needs --role ARN and --s3 s3://BUCKET[/PREFIX]")
    settings = ClientSettings.from_env()
    job = sagemaker.SageMakerJob(
        role=args.role,
        image=args.image or settings.training_image or "",
        s3=args.s3,
        instance_type=args.instance_type,
        spot=args.spot,
        name=args.job_name,
        max_runtime_s=args.max_runtime,
        poll_s=settings.sagemaker_poll_s,
    )
    with progress("uploading the data", args.data.stat().st_size, "B") as bar:
        sagemaker.run(options, job, say=note, upload_progress=bar.advance)
