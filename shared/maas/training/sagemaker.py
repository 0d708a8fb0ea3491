"""The training image's SageMaker entry point: SageMaker starts the container as
`IMAGE train` (infra/training/Dockerfile: `python -m maas.training train`).

SageMaker's contract, under /opt/ml (each folder can be moved with the variable the SageMaker
training toolkit uses for it, which is how tests run the entry point outside a container):

- input/config/hyperparameters.json (SM_INPUT_CONFIG_DIR): {"maas-arguments": "<JSON list>"},
  the options of `maas train` after DATA and --out, as `maas train --on sagemaker` wrote them;
- input/data/train/ (SM_CHANNEL_TRAIN): the channel `train`, one CSV/TSV/JSONL/JSON file;
- model/ (SM_MODEL_DIR): what SageMaker tars into model.tar.gz; the artifact goes to
  model/artifact/;
- output/failure (SM_OUTPUT_DIR): the reason, when the job fails (SageMaker shows it as the
  job's FailureReason).

Exit status as `python -m maas.training` (0 done, 2 bad input, 3 quality gate failed).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path
from typing import TextIO

from maas.exits import EXIT_USAGE
from maas.training.options import SAGEMAKER_ARTIFACT, SAGEMAKER_CHANNEL, SAGEMAKER_HYPERPARAMETER


def folder(variable: str, default: str) -> Path:
    return Path(os.environ.get(variable) or default)


def _fail(reason: str, status: int) -> int:
    failure = folder("SM_OUTPUT_DIR", "/opt/ml/output") / "failure"
    failure.parent.mkdir(parents=True, exist_ok=True)
    failure.write_text(reason[-1000:], encoding="utf-8")
    print(f"maas: error: {reason}", file=sys.stderr)
    return status


def main() -> int:
    from maas.training import cli

    config = folder("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config") / "hyperparameters.json"
    try:
        given = json.loads(config.read_text(encoding="utf-8"))
        arguments = json.loads(given.get(SAGEMAKER_HYPERPARAMETER, "[]"))
    except (OSError, ValueError) as exc:
        return _fail(f"unreadable {config}: {exc}", EXIT_USAGE)
    if not isinstance(arguments, list) or not all(isinstance(a, str) for a in arguments):
        return _fail(f"{SAGEMAKER_HYPERPARAMETER} must be a JSON list of strings", EXIT_USAGE)
    channel = folder("SM_CHANNEL_TRAIN", f"/opt/ml/input/data/{SAGEMAKER_CHANNEL}")
    files = sorted(p for p in channel.iterdir() if p.is_file()) if channel.is_dir() else []
    if len(files) != 1:
        found = f"must hold one data file, found {len(files)}"
        return _fail(f"channel {SAGEMAKER_CHANNEL!r} {found}", EXIT_USAGE)
    out = folder("SM_MODEL_DIR", "/opt/ml/model") / SAGEMAKER_ARTIFACT
    errors = io.StringIO()
    with contextlib.redirect_stderr(Tee(sys.stderr, errors)):
        try:
            status = cli.main([str(files[0]), "--out", str(out), *arguments])
        except SystemExit as exc:  # argparse refusing the arguments
            status = exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if status != 0:
        lines = [line for line in errors.getvalue().splitlines() if "error:" in line]
        return _fail(lines[-1] if lines else f"the training job exited with {status}", status)
    return 0


class Tee(io.TextIOBase):
    """Writes to two streams: the job's log (CloudWatch) and the failure reason's buffer."""

    def __init__(self, *streams: TextIO) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()
