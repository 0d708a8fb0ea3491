"""Keras -> TFLite (float, and dynamic-range quantized for serving), in a child process.

Conversion is run out of process because the TFLite converter can take the whole interpreter
down (full-integer conversion of the LSTM segfaulted in TF 2.21); a crash then becomes a clear
error instead of a dead training job. `python -m maas.training.export MODEL.keras OUT_DIR`
writes OUT_DIR/model-float.tflite and OUT_DIR/model.tflite, and with `KIND LENGTHS` the
quantized models of the sequence-length buckets (see `bucket_plan` and maas.classifier).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from maas.core.manifest import BucketKind
from maas.core.tokenizer import TokenizerSpec
from maas.errors import ExportFailed

FLOAT = "model-float.tflite"
QUANTIZED = "model.tflite"
TIMEOUT_S = 600

# Sequence-length buckets: extra models that read fewer tokens, for texts shorter than
# max_length. A short text then costs a few steps instead of max_length.
MASKED = BucketKind.MASKED  # masked mean of embeddings: a shorter input is the same model
LSTM_STATE = BucketKind.LSTM_STATE  # pre-padded LSTM: continues from the padding's state
# The LSTM pays per step (~2 us) and its files are small (~33 KB): several buckets. A masked
# mean-of-embeddings file carries the whole embedding table (~1.3 MB, downloaded at every cold
# start) to save ~15 us an invoke: two.
BUCKET_LENGTHS = {LSTM_STATE: (16, 32, 64), MASKED: (32, 128)}
STEP = "model-step.tflite"  # LSTM_STATE: one step from a given state, to compute that state


def bucket_file(length: int) -> str:
    return f"model-{length}.tflite"


@dataclass(frozen=True)
class BucketPlan:
    kind: BucketKind
    lengths: tuple[int, ...]


def bucket_plan(architecture: str, spec: TokenizerSpec) -> BucketPlan | None:
    """Which buckets a model gets, or None. An LSTM needs its padding first (pre-padding): a
    bucket starts from the state the full model has after that padding."""
    if architecture == "lstm":
        if spec.padding != "pre":
            return None
        kind = LSTM_STATE
    else:
        # Masked: the mean of embeddings, the CNN's masked max, the transformer's masked
        # attention and the BiLSTM's masked steps all read a shorter input as the same text.
        # buckets.check proves it for each exported model and drops buckets that differ.
        kind = MASKED
    lengths = tuple(length for length in BUCKET_LENGTHS[kind] if length < spec.max_length)
    return BucketPlan(kind, lengths) if lengths else None


@dataclass(frozen=True)
class Exported:
    float_model: Path
    quantized_model: Path
    # the plan's files (bucket models, and the step model of LSTM_STATE), all quantized
    bucket_files: tuple[Path, ...] = ()


def export(keras_path: Path, out_dir: Path, buckets: BucketPlan | None = None) -> Exported:
    """Convert in a child process; raise ExportFailed with its last words if it fails."""
    command = [sys.executable, "-m", "maas.training.export", str(keras_path), str(out_dir)]
    if buckets:
        command += [buckets.kind, ",".join(map(str, buckets.lengths))]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise ExportFailed(f"TFLite conversion did not finish in {TIMEOUT_S} s") from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ExportFailed(f"TFLite conversion failed (exit {done.returncode}): {last}")
    files = [bucket_file(length) for length in buckets.lengths] if buckets else []
    if buckets and buckets.kind == LSTM_STATE:
        files.append(STEP)
    return Exported(out_dir / FLOAT, out_dir / QUANTIZED, tuple(out_dir / f for f in files))


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


def _main(keras_path: str, out_dir: str, kind: str | None = None, lengths: str = "") -> None:
    import keras

    from maas.training import models  # registers the custom layers for load_model

    trained = keras.models.load_model(keras_path, compile=False)
    model = models.fixed_batch_copy(trained)
    for name, quantize in ((FLOAT, False), (QUANTIZED, True)):
        (Path(out_dir) / name).write_bytes(_convert(model, quantize))
    for length in (int(n) for n in lengths.split(",") if n):
        if kind == LSTM_STATE:
            bucket = models.state_copy(trained, length)
        else:
            bucket = models.fixed_batch_copy(trained, length=length)
        (Path(out_dir) / bucket_file(length)).write_bytes(_convert(bucket, True))
    if kind == LSTM_STATE:
        (Path(out_dir) / STEP).write_bytes(_convert(models.state_copy(trained, 1), True))


if __name__ == "__main__":
    _main(*sys.argv[1:5])
