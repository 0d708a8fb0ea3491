"""What a training run is asked to do: the contract between `maas train` (which launches the
job in the training environment) and the job itself. Plain Python: importing it loads nothing
heavy, on either side."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path

DEFAULT_PRESET = "default"
DEFAULT_SEED = 42
# The contract between `maas train --on sagemaker` (maas.client.sagemaker) and the training
# image's entry point (maas.training.sagemaker): the input channel, the hyperparameter that
# carries the job's options, and the artifact's folder inside model.tar.gz.
SAGEMAKER_CHANNEL = "train"
SAGEMAKER_HYPERPARAMETER = "maas-arguments"
SAGEMAKER_ARTIFACT = "artifact"
# The presets' names, here so that the CLI can offer them without loading the training code
# (maas.training.presets.PRESETS holds the presets; a test keeps the two in step).
PRESET_NAMES = ("default", "seed", "cnn", "bilstm", "transformer")
AUTO = "auto"  # not a preset: trains several and keeps the best on validation
DEFAULT_TIME_BUDGET_S = 600
# `--stream` unset: a file larger than this is read once and trained from disk
# (maas.training.stream); a smaller one is held in memory.
STREAM_ABOVE_BYTES = 100 * 1024 * 1024
STREAM_ABOVE = f"{STREAM_ABOVE_BYTES // 2**20} MB"  # as help texts and messages say it


@dataclass(frozen=True)
class TrainingOptions:
    data: Path
    out: Path
    text_column: str = "text"
    label_column: str = "label"
    preset: str = DEFAULT_PRESET
    epochs: int | None = None  # None: the preset's
    seed: int = DEFAULT_SEED
    allow_quality_drop: bool = False
    encoding: str | None = None  # None: recognised from the file (maas.client.data)
    delimiter: str | None = None
    time_budget: float = DEFAULT_TIME_BUDGET_S  # --preset auto: seconds of training at most
    cv: int | None = None  # k-fold cross-validation of the preset on train + validation
    stream: bool | None = None  # read once, train from disk; None: when the file is large

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TrainingOptions:
        """From a parser that has these options (an option left unset keeps its default)."""
        given = {
            f.name: getattr(args, f.name)
            for f in fields(cls)
            if getattr(args, f.name, None) is not None
        }
        return cls(**given)

    def argv(self) -> list[str]:
        """The job's command line for these options (`python -m maas.training ...`)."""
        command = [str(self.data), "--out", str(self.out)]
        command += ["--text-column", self.text_column, "--label-column", self.label_column]
        command += ["--preset", self.preset, "--seed", str(self.seed)]
        if self.epochs is not None:
            command += ["--epochs", str(self.epochs)]
        if self.encoding is not None:
            command += ["--encoding", self.encoding]
        if self.delimiter is not None:
            command += ["--delimiter", self.delimiter]
        if self.allow_quality_drop:
            command.append("--allow-quality-drop")
        if self.preset == AUTO:
            command += ["--time-budget", f"{self.time_budget:g}"]
        if self.cv is not None:
            command += ["--cv", str(self.cv)]
        if self.stream is not None:
            command.append("--stream" if self.stream else "--no-stream")
        return command
