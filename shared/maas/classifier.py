"""The inference core: tokenizer + one TFLite interpreter -> labels with probabilities.

This is the only prediction path: the Lambda functions, `maas predict` and `maas evaluate`
all call `Classifier.predict`. It never imports TensorFlow; the interpreter comes from
tflite-runtime (the Lambda bundle) or, where that cannot be installed next to TensorFlow,
from its successor LiteRT (`ai-edge-litert`), which runs the same model files.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from maas import artifact
from maas.errors import GoldenMismatch
from maas.store import LocalModel, ModelRef, ModelStore
from maas.tokenizer import Tokenizer

GOLDEN_TOLERANCE = 1e-3


def _interpreter_class() -> tuple[Any, str]:
    try:
        from tflite_runtime import __version__ as version
        from tflite_runtime.interpreter import Interpreter
    except ImportError:
        from ai_edge_litert import __version__ as version
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, f"ai-edge-litert {version}"
    return Interpreter, f"tflite-runtime {version}"


def runtime_name() -> str:
    """Which interpreter this process uses, e.g. 'tflite-runtime 2.14.0'."""
    return _interpreter_class()[1]


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """TFLite's C++ core prints "INFO: Created TensorFlow Lite XNNPACK delegate" to the process's
    stderr when an interpreter is built; no setting turns it off, and it would break the CLI's
    one-line errors and the functions' JSON logs."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float
    scores: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "score": round(self.score, 6),
            "scores": {label: round(p, 6) for label, p in self.scores.items()},
        }


class Classifier:
    def __init__(self, model: LocalModel, num_threads: int = 1) -> None:
        self.name = model.name
        self.version = model.version
        self.manifest = model.manifest
        self.labels: list[str] = list(model.manifest["labels"])
        self.tokenizer = Tokenizer.load(model.path / artifact.TOKENIZER)
        interpreter_class, self.runtime = _interpreter_class()
        with _native_stderr_silenced():
            self._interpreter = interpreter_class(
                model_path=str(model.path / artifact.MODEL), num_threads=num_threads
            )
            self._interpreter.allocate_tensors()
        (input_detail,) = self._interpreter.get_input_details()
        (output_detail,) = self._interpreter.get_output_details()
        self._input = input_detail["index"]
        self._output = output_detail["index"]
        self._length = int(input_detail["shape"][1])
        self._binary = int(output_detail["shape"][-1]) == 1
        if self._binary and len(self.labels) != 2:
            raise ValueError("a single sigmoid output needs exactly two labels")

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_store(
        cls,
        ref: ModelRef | str,
        store: ModelStore | str | None = None,
        cache_dir: str | Path | None = None,
    ) -> Classifier:
        store = store if isinstance(store, ModelStore) else ModelStore.open(store)
        return cls(store.fetch(ref, cache_dir))

    @classmethod
    def from_directory(cls, directory: str | Path) -> Classifier:
        """An unpublished artifact (a training job's output), verified against its manifest."""
        manifest = artifact.read_manifest(directory)
        artifact.verify_files(directory, manifest, artifact.SERVING_FILES)
        name = str(manifest.get("name") or Path(directory).name)
        version = str(manifest.get("version") or "unpublished")
        return cls(LocalModel(name, version, Path(directory), manifest))

    # -- prediction ---------------------------------------------------------------------
    def probabilities(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Probabilities per label, shape (len(texts), len(labels))."""
        ids = self.tokenizer.encode(texts, self._length)
        out = np.empty((len(texts), 1 if self._binary else len(self.labels)), dtype=np.float32)
        interpreter = self._interpreter
        for row in range(len(texts)):
            interpreter.set_tensor(self._input, ids[row : row + 1])
            interpreter.invoke()
            out[row] = interpreter.get_tensor(self._output)[0]
        if self._binary:
            return np.hstack([1.0 - out, out])
        return out

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        probabilities = self.probabilities(texts)
        best = probabilities.argmax(axis=1)
        return [
            Prediction(
                label=self.labels[int(best[row])],
                score=float(probabilities[row, best[row]]),
                scores={
                    label: float(p)
                    for label, p in zip(self.labels, probabilities[row], strict=True)
                },
            )
            for row in range(len(texts))
        ]

    def describe(self) -> dict[str, Any]:
        """What `GET /models/{name}` and `maas models` show."""
        return {
            "name": self.name,
            "version": self.version,
            "labels": self.labels,
            "task": self.manifest["task"],
            "metrics": self.manifest.get("metrics", {}),
            "created_at": self.manifest.get("created_at"),
            "published_at": self.manifest.get("published_at"),
            "runtime": self.runtime,
        }

    def verify_golden(self, tolerance: float = GOLDEN_TOLERANCE) -> float:
        """Check the manifest's golden examples; returns the largest probability difference."""
        golden = self.manifest["golden"]["examples"]
        if not golden:
            raise GoldenMismatch(f"{self.name}:{self.version} records no golden examples")
        expected = np.asarray([example["probabilities"] for example in golden], dtype=np.float64)
        actual = self.probabilities([example["text"] for example in golden])
        worst = float(np.max(np.abs(actual - expected)))
        if worst > tolerance:
            raise GoldenMismatch(
                f"{self.runtime} does not reproduce the golden examples of "
                f"{self.name}:{self.version}: largest difference {worst:.2e} > {tolerance:g}",
                max_abs_diff=worst,
            )
        return worst
