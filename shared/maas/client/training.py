"""Launch the training job from a user's machine: in the training environment (TensorFlow and
tflite-runtime cannot share numpy, so the job runs in its own Python), then check the artifact
again with this environment's interpreter - the runtime the Lambda functions use."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from maas.client.settings import ClientSettings
from maas.errors import ConfigurationError
from maas.training.options import TrainingOptions


def training_python(settings: ClientSettings) -> str:
    """The interpreter of the training environment: MAAS_TRAIN_PYTHON, else `.venv-train` next
    to this environment, else this one when it has TensorFlow (the GPU training container)."""
    if settings.train_python:
        return settings.train_python
    sibling = Path(sys.prefix).parent / ".venv-train" / "bin" / "python"
    if sibling.is_file():
        return str(sibling)
    try:
        if importlib.util.find_spec("tensorflow") is not None:
            return sys.executable
    except ValueError:
        pass
    raise ConfigurationError(
        "no training environment: run `make install` (creates .venv-train) "
        "or set MAAS_TRAIN_PYTHON to a Python that has maas[train]"
    )


def run_job(options: TrainingOptions, settings: ClientSettings | None = None) -> int:
    """Run the training job; its progress and errors go straight to this process's stderr.
    Returns its exit status (0 done, 2 bad input, 3 quality gate failed, 1 anything else)."""
    python = training_python(settings or ClientSettings.from_env())
    # TensorFlow's C++ log (oneDNN notices, a harmless tf.data "E0000 NodeDef mentions attribute"
    # line) is noise for a person watching epochs; real failures surface as Python errors.
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", **os.environ}
    command = [python, "-m", "maas.training", *options.argv()]
    return subprocess.run(command, check=False, env=env).returncode
