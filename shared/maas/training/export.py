"""Keras -> TFLite (float, and dynamic-range quantized for serving), in a child process.

Conversion is run out of process because the TFLite converter can take the whole interpreter
down (full-integer conversion of the LSTM segfaulted in TF 2.21); a crash then becomes a clear
error instead of a dead training job. `python -m maas.training.export MODEL.keras OUT_DIR`
writes OUT_DIR/model-float.tflite and OUT_DIR/model.tflite.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from maas.errors import MaasError

FLOAT = "model-float.tflite"
QUANTIZED = "model.tflite"
TIMEOUT_S = 600


class ExportFailed(MaasError):
    code = "export_failed"


@dataclass(frozen=True)
class Exported:
    float_model: Path
    quantized_model: Path


def export(keras_path: Path, out_dir: Path) -> Exported:
    """Convert in a child process; raise ExportFailed with its last words if it fails."""
    command = [sys.executable, "-m", "maas.training.export", str(keras_path), str(out_dir)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise ExportFailed(f"TFLite conversion did not finish in {TIMEOUT_S} s") from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ExportFailed(f"TFLite conversion failed (exit {done.returncode}): {last}")
    return Exported(out_dir / FLOAT, out_dir / QUANTIZED)


def _convert(model: object, quantize: bool) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize:
        # Dynamic-range quantization: int8 weights, float activations.
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        # Per-channel dense quantization emits FULLY_CONNECTED v12, which tflite-runtime 2.14
        # (the Lambda's interpreter) cannot load; per-tensor keeps it at a version it knows.
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    return bytes(converter.convert())


def _main(keras_path: str, out_dir: str) -> None:
    import keras

    from maas.training import models  # registers the custom layers for load_model

    model = models.fixed_batch_copy(keras.models.load_model(keras_path, compile=False))
    for name, quantize in ((FLOAT, False), (QUANTIZED, True)):
        (Path(out_dir) / name).write_bytes(_convert(model, quantize))


if __name__ == "__main__":
    _main(*sys.argv[1:3])
