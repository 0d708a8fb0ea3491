"""Train a model for the benchmark through the real training job, and keep its Keras model.

    .venv-train/bin/python bench/train_model.py KERAS_OUT maas-train-arguments...

The artifact is exactly what `maas train` writes (this runs `maas.training.cli.main` with the
given arguments). The TensorFlow baseline of the benchmark also needs the trained Keras model,
which the artifact does not keep (serving never reads it), so the job's export step is wrapped
to save the model it exports to KERAS_OUT as well. Nothing else about the job changes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def main(argv: list[str]) -> int:
    keras_out = Path(argv[0])
    from maas.training import cli, job

    export_model = job.export_model

    def export_and_keep(model: Any, directory: Path, *args: Any, **kwargs: Any) -> Any:
        sizes = export_model(model, directory, *args, **kwargs)
        keras_out.parent.mkdir(parents=True, exist_ok=True)
        model.save(keras_out)
        return sizes

    job.export_model = export_and_keep
    status = cli.main(argv[1:])
    if status == 0 and not keras_out.is_file():
        print("bench: the training job did not export through job.export_model", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
