"""The model artifact and its manifest: the contract between training, the store and serving.

An artifact is a directory with `model.tflite`, `tokenizer.json` and `manifest.json` (plus the
models of its sequence-length buckets, a model card and its pictures). The manifest is the
root of trust: it records the sha256 of every other file, and a store writes it last.

`Manifest` is the one declaration of that contract. The training job builds one, the store
reads and extends one (name, version, publication), the classifier opens a directory with
one. It reads and writes the same JSON as before it was a type: a manifest keeps exactly the
keys it was given (`to_json` drops nothing it read and adds nothing it was not told).
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from maas.core.tokenizer import TokenizerSpec
from maas.errors import BadData, IntegrityError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
MODEL = "model.tflite"
TOKENIZER = "tokenizer.json"
# What a serving process needs; the rest of an artifact (card, plots) is for people.
SERVING_FILES = (MODEL, TOKENIZER)
# How far the serving runtime's probabilities may be from the golden examples' (recorded by
# the training job with the interpreter it evaluated): checked at train, publish and load.
GOLDEN_TOLERANCE = 1e-3
# How far two interpreters (LiteRT, which evaluates in training, and tflite-runtime, which
# serves) may disagree on a quantized model before it counts as not portable. Their hybrid
# (dynamic-range) LSTM kernels round differently: up to ~2e-3 was seen on the seed preset.
CROSS_RUNTIME_TOLERANCE = 1e-2


class BucketKind(StrEnum):
    """How a sequence-length bucket model relates to the full model (see maas.core.classifier)."""

    MASKED = "masked"  # masked mean of embeddings: a shorter input is the same model
    LSTM_STATE = "lstm_state"  # pre-padded LSTM: starts from the state its padding leaves


# Tensor names of the LSTM_STATE models' signature (the training job's export names them).
LSTM_STATE_INPUTS = ("h0", "c0")
IDS_INPUT = "ids"


class _Part(BaseModel):
    """A part of the manifest serving relies on: unknown keys are a mistake."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _Record(BaseModel):
    """A part for people and tools (metrics, training facts): may carry more than declared."""

    model_config = ConfigDict(extra="allow", frozen=True)


class FileEntry(_Part):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)


class TensorSpec(_Part):
    dtype: str
    shape: list[int]


class OutputSpec(_Part):
    activation: Literal["sigmoid", "softmax"]
    shape: list[int]


class GoldenExample(_Part):
    text: str
    probabilities: list[float]


class RecordedFrom(_Part):
    """The interpreter that recorded golden examples first, and how far the serving runtime
    that re-recorded them was from it."""

    runtime: str | None = None
    max_abs_diff: float


class Golden(_Part):
    """Texts with the probabilities the quantized model gave them, recorded by `runtime`:
    the training job's interpreter, or - once `maas train` has checked the artifact with the
    serving runtime - that runtime (then `recorded_from` says what it replaced)."""

    runtime: str | None = None
    tolerance: float = GOLDEN_TOLERANCE
    examples: list[GoldenExample] = []
    recorded_from: RecordedFrom | None = None


class BucketModel(_Part):
    length: int = Field(ge=1)
    file: str


class Buckets(_Part):
    kind: BucketKind
    models: list[BucketModel]
    step: str | None = None  # LSTM_STATE: the one-step model that computes the padding state
    max_abs_diff: float | None = None
    checked_texts: int | None = None


class ClassReport(_Record):
    precision: float
    recall: float
    f1: float
    support: int


class EvaluationReport(_Record):
    """What `maas.core.metrics.classification_report` computes, as stored."""

    n: int
    accuracy: float
    # 95 % Wilson interval of the accuracy (absent in manifests written before it was added)
    accuracy_interval: list[float] | None = None
    macro_f1: float
    per_class: dict[str, ClassReport] = {}
    confusion_matrix: list[list[int]] = []


class QualityGate(_Record):
    max_accuracy_drop: float
    accuracy_drop: float
    passed: bool
    overridden: bool = False
    max_probability_difference: float | None = None


class TrainingRun(_Record):
    epochs_run: int
    best_epoch: int
    seconds: float
    # a preset with a TF-IDF linear path: that path alone on the validation split, and whether
    # the network beside it was kept (it is zeroed when it did not lower the validation loss),
    # and the path's logistic-regression C (chosen by validation log-loss)
    linear_validation: dict[str, float] | None = None
    network_kept: bool | None = None
    linear_c: float | None = None


class Manifest(BaseModel):
    """`manifest.json`. Serving reads labels, task, input, tokenizer, files, golden, buckets;
    the rest records how the model was made and how it scored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = SCHEMA_VERSION
    labels: list[str] = Field(min_length=2)
    task: Literal["binary", "multiclass"]
    input: TensorSpec
    output: OutputSpec | None = None
    tokenizer: TokenizerSpec
    golden: Golden = Golden()
    files: dict[str, FileEntry] = {}
    buckets: Buckets | None = None
    # how it was made
    preset: str | None = None
    hyperparameters: dict[str, Any] | None = None
    metrics: dict[str, EvaluationReport] | None = None
    quality_gate: QualityGate | None = None
    sizes: dict[str, int] | None = None
    data: dict[str, Any] | None = None
    libraries: dict[str, str] | None = None
    created_at: str | None = None
    training: TrainingRun | None = None
    # what the numbers cannot say by themselves (a test split too small, overfitting)
    notes: list[str] | None = None
    # `--preset auto`: every candidate, its validation accuracy, the one chosen
    candidates: list[dict[str, Any]] | None = None
    # `--cv K`: the preset's k-fold accuracy on train + validation, and the baseline's
    cross_validation: dict[str, Any] | None = None
    # set by the store when it publishes the artifact as a version
    name: str | None = None
    version: str | None = None
    published_at: str | None = None
    store: str | None = None

    @field_validator("schema_version")
    @classmethod
    def _known_schema(cls, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise ValueError(f"schema version {value}; this maas reads version {SCHEMA_VERSION}")
        return value

    @field_validator("labels")
    @classmethod
    def _distinct_labels(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("labels must be distinct")
        return value

    # -- reading and writing ------------------------------------------------------------------
    @classmethod
    def from_json(cls, data: bytes, source: str = "manifest") -> Manifest:
        """Parse and check a manifest; IntegrityError names what is wrong with it."""
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"])
            reason = first["msg"] if where else "not a JSON object"
            if first["type"] == "json_invalid":
                reason = "not valid JSON"
            raise IntegrityError(
                f"{source} is not a valid manifest: {where + ': ' if where else ''}{reason}"
            ) from None

    def to_json(self) -> bytes:
        doc = self.model_dump(mode="json", exclude_unset=True)
        doc.setdefault("schema_version", SCHEMA_VERSION)
        return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True).encode("utf-8")

    def updated(self, **changes: Any) -> Manifest:
        """A copy with some fields replaced (validated like a new manifest)."""
        doc = self.model_dump(mode="python", exclude_unset=True) | changes
        return Manifest.model_validate(doc)

    # -- what serving needs ---------------------------------------------------------------------
    @property
    def binary(self) -> bool:
        return self.task == "binary"

    def serving_files(self) -> tuple[str, ...]:
        """SERVING_FILES plus the models of the sequence-length buckets, if any (artifacts
        written before buckets have none and serve from the one model)."""
        extra = [bucket.file for bucket in self.buckets.models] if self.buckets else []
        if self.buckets and self.buckets.step:
            extra.append(self.buckets.step)
        return (*SERVING_FILES, *extra)


# ------------------------------------------------------------------------------ digests
def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_files(directory: str | Path) -> dict[str, FileEntry]:
    """sha256 and size of every regular file of an artifact except the manifest."""
    root = Path(directory)
    return {
        path.name: FileEntry(sha256=sha256_file(path), bytes=path.stat().st_size)
        for path in sorted(root.iterdir())
        if path.is_file() and path.name != MANIFEST and not path.name.startswith(".")
    }


def read_manifest(directory: str | Path) -> Manifest:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise BadData(f"{directory} is not a model artifact: {MANIFEST} is missing")
    return Manifest.from_json(path.read_bytes(), str(path))


def write_manifest(directory: str | Path, manifest: Manifest) -> Manifest:
    """Record the directory's current files in the manifest and write it (last)."""
    described = manifest.updated(schema_version=SCHEMA_VERSION, files=describe_files(directory))
    (Path(directory) / MANIFEST).write_bytes(described.to_json())
    return described


def verify_file(path: str | Path, expected_sha256: str) -> None:
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise IntegrityError(
            f"{Path(path).name} does not match its manifest "
            f"(sha256 {actual[:12]}…, expected {expected_sha256[:12]}…); refusing to load it",
            file=Path(path).name,
        )


def verify_files(directory: str | Path, manifest: Manifest, names: tuple[str, ...] = ()) -> None:
    """Check the named files (default: all the manifest lists) against their digests."""
    for name in names or tuple(manifest.files):
        entry = manifest.files.get(name)
        if entry is None:
            raise IntegrityError(f"the manifest lists no {name}", file=name)
        path = Path(directory) / name
        if not path.is_file():
            raise IntegrityError(f"{name} is missing from {directory}", file=name)
        verify_file(path, entry.sha256)
