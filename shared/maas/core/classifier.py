"""The inference core: tokenizer + one TFLite interpreter -> labels with probabilities.

This is the only prediction path: the Lambda functions, `maas predict` and `maas evaluate`
all call `Classifier.predict`. It opens a directory that holds an artifact's files, described
by its `Manifest`; where the directory came from (a training job, a store's cache) is not its
business. It never imports TensorFlow; the interpreter comes from tflite-runtime (the Lambda
bundle) or, where that cannot be installed next to TensorFlow, from its successor LiteRT
(`ai-edge-litert`), which runs the same model files.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from maas.core import explain as explaining
from maas.core import manifest as artifact
from maas.core import probe
from maas.core.explain import DEFAULT_MAX_INVOKES, Explanation
from maas.core.manifest import IDS_INPUT, LSTM_STATE_INPUTS, BucketKind, Manifest
from maas.core.tokenizer import OOV_ID, PAD_ID, Tokenizer
from maas.errors import GoldenMismatch, IntegrityError, ModelCrashed


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


def _load_tokenizer(path: Path, where: str) -> Tokenizer:
    try:
        return Tokenizer.load(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:  # JSON errors are ValueErrors
        raise IntegrityError(f"{where}: unusable tokenizer.json ({type(exc).__name__})") from None


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float
    scores: dict[str, float]
    explanation: Explanation | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": self.label,
            "score": round(self.score, 6),
            "scores": {label: round(p, 6) for label, p in self.scores.items()},
        }
        if self.explanation is not None:
            out["explanation"] = self.explanation.to_dict()
        return out


def _padding_states(step: _Model, count: int) -> list[tuple[Any, Any]]:
    """The LSTM state (h, c) after 0, 1, ..., count padding steps, by the one-step model."""
    h0, c0 = (
        np.zeros(step.interpreter.get_tensor(step.inputs[name]).shape, dtype=np.float32)
        for name in LSTM_STATE_INPUTS
    )
    states = [(h0, c0)]
    for _ in range(count):
        _, h, c = step.run([], True, states[-1])
        states.append((h, c))
    return states


class _Model:
    """One interpreter, opened once per process, with a preallocated input buffer."""

    def __init__(self, path: Path, interpreter_class: Any, num_threads: int) -> None:
        with _native_stderr_silenced():
            self.interpreter = interpreter_class(model_path=str(path), num_threads=num_threads)
            self.interpreter.allocate_tensors()
        details = {d["index"]: d for d in self.interpreter.get_input_details()}
        self.inputs: dict[str, int] = {}
        self.outputs = [d["index"] for d in self.interpreter.get_output_details()]
        if self.interpreter.get_signature_list():
            # tensors by signature name ("ids", "h0", "c0"; outputs "output_0", ... in the
            # Keras model's order), from a runner that is dropped at once: while one lives,
            # invoke() refuses to run
            runner = self.interpreter.get_signature_runner()
            self.inputs = {name: d["index"] for name, d in runner.get_input_details().items()}
            self.outputs = [d["index"] for _, d in sorted(runner.get_output_details().items())]
            del runner
        self.ids = self.inputs.get(IDS_INPUT, next(iter(details)))
        self.length = int(details[self.ids]["shape"][1])
        self.buffer = np.zeros((1, self.length), dtype=np.int32)

    def run(self, ids: list[int], pre: bool, state: tuple[Any, Any] | None = None) -> Any:
        """Invoke on one text's ids (at most `length`), padded on the given side; returns the
        outputs (the first is the probabilities). `state`: the LSTM's (h0, c0)."""
        buffer, interpreter = self.buffer, self.interpreter
        buffer.fill(PAD_ID)
        if ids:
            if pre:
                buffer[0, self.length - len(ids) :] = ids
            else:
                buffer[0, : len(ids)] = ids
        interpreter.set_tensor(self.ids, buffer)
        if state is not None:
            for name, value in zip(LSTM_STATE_INPUTS, state, strict=True):
                interpreter.set_tensor(self.inputs[name], value)
        interpreter.invoke()
        return [interpreter.get_tensor(index) for index in self.outputs]


class Classifier:
    """Labels with probabilities for texts: the tokenizer, then TFLite interpreters opened
    once per process (the model's, and one per sequence-length bucket).

    Sequence-length buckets (an artifact's optional `buckets`; older artifacts have none): a
    text of n tokens is read by the shortest model of at least n steps instead of the full
    max_length one, with the same answer (the training job checks it, `maas publish` checks
    it again through the golden examples). "masked" models ignore padding, so a shorter
    input is the same model. The pre-padded LSTM ("lstm_state") reads its padding, so a
    bucket of length B starts from the LSTM state the full model has after max_length - B
    padding steps, computed here once, at load, with the artifact's one-step model.
    """

    def __init__(
        self,
        directory: str | Path,
        manifest: Manifest,
        *,
        name: str | None = None,
        version: str | None = None,
        num_threads: int = 1,
        probe_first: bool = True,
    ) -> None:
        """Open the artifact in `directory` that `manifest` describes (its files are trusted:
        `Classifier.open` checks them first, a store checks them when it fetches). Its model
        files are run in a child process first (maas.core.probe), unless `probe_first` is
        off (the child itself)."""
        path = Path(directory)
        self.name = name or manifest.name or path.name
        self.version = version or manifest.version or "unpublished"
        self.manifest = manifest
        self.labels: list[str] = list(manifest.labels)
        self.tokenizer = _load_tokenizer(path / artifact.TOKENIZER, f"{self.name}:{self.version}")
        interpreter_class, self.runtime = _interpreter_class()
        if probe_first:
            # every model file runs in a throwaway child first: a crafted one cannot crash us
            models = [n for n in manifest.serving_files() if n != artifact.TOKENIZER]
            digests = [
                manifest.files[n].sha256 if n in manifest.files else artifact.sha256_file(path / n)
                for n in models
            ]
            probe.ensure_safe(
                [path / n for n in models],
                digests,
                lambda: Classifier(
                    path, manifest, name=self.name, version=self.version, probe_first=False
                ).self_test(),
            )
        self._full = _Model(path / artifact.MODEL, interpreter_class, num_threads)
        self._length = self._full.length
        outputs = self._full.interpreter.get_output_details()
        self._binary = int(outputs[0]["shape"][-1]) == 1
        width = 2 if self._binary else int(outputs[0]["shape"][-1])
        if width != len(self.labels):
            raise IntegrityError(
                f"{self.name}:{self.version}: the model gives {width} probabilities for "
                f"{len(self.labels)} labels",
                labels=len(self.labels),
                outputs=width,
            )
        spec = self.tokenizer.spec
        self._pre = spec.padding == "pre"
        self._keep_tail = spec.truncating == "pre"
        # (length, model, LSTM state to start from) by increasing length
        self._buckets: list[tuple[int, _Model, tuple[Any, Any] | None]] = []
        buckets = manifest.buckets
        opened = [
            _Model(path / entry.file, interpreter_class, num_threads)
            for entry in (buckets.models if buckets else [])
        ]
        states: list[tuple[Any, Any]] = []
        if buckets and buckets.kind == BucketKind.LSTM_STATE and buckets.step and opened:
            step = _Model(path / buckets.step, interpreter_class, num_threads)
            states = _padding_states(step, self._length - min(m.length for m in opened))
        for bucket in sorted(opened, key=lambda m: m.length):
            if bucket.length >= self._length:
                continue
            state = states[self._length - bucket.length] if states else None
            self._buckets.append((bucket.length, bucket, state))

    @classmethod
    def open(cls, directory: str | Path) -> Classifier:
        """An artifact directory (a training job's output), verified against its manifest."""
        manifest = artifact.read_manifest(directory)
        artifact.verify_files(directory, manifest, manifest.serving_files())
        return cls(directory, manifest)

    # -- prediction ---------------------------------------------------------------------
    def probabilities(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Probabilities per label, shape (len(texts), len(labels))."""
        rows = self._rows(texts)
        return np.asarray(rows, dtype=np.float32).reshape(len(rows), len(self.labels))

    def _rows(self, texts: Sequence[str]) -> list[list[float]]:
        """Each text's probabilities per label, as Python floats. The hot path of every
        prediction: one text's overhead over tokenizer + invoke is a few plain-Python steps
        (no numpy call on a two-element array costs less than its dispatch)."""
        width, keep_tail, pre, binary = self._length, self._keep_tail, self._pre, self._binary
        to_ids, read = self.tokenizer.to_ids, self._read
        rows: list[list[float]] = []
        for text in texts:
            ids = to_ids(text)
            if len(ids) > width:
                ids = ids[-width:] if keep_tail else ids[:width]
            row: list[float] = read(ids, pre)[0][0].tolist()
            if binary:
                row = [1.0 - row[0], row[0]]
            if not all(map(math.isfinite, row)):
                # corrupted weights: never answer NaN as a probability
                raise ModelCrashed(f"{self.name}:{self.version} produced non-finite probabilities")
            rows.append(row)
        return rows

    def probabilities_from_ids(self, ids: list[int]) -> npt.NDArray[np.float32]:
        """One text's probabilities per label from its ids (at most what the model reads),
        computed exactly as `probabilities` computes them."""
        out = self._read(ids, self._pre)[0][0]
        if not np.isfinite(out).all():
            raise ModelCrashed(f"{self.name}:{self.version} produced non-finite probabilities")
        if self._binary:
            return np.array([1.0 - out[0], out[0]], dtype=np.float32)
        return np.asarray(out, dtype=np.float32)

    def explain(self, text: str, max_invokes: int = DEFAULT_MAX_INVOKES) -> Explanation:
        """Leave-one-out token attributions for the label this text is given
        (maas.core.explain): the tokens the model reads, with their spans in `text`."""
        spans, unread = self.tokenizer.read_spans(text, self._length)
        ids = self.tokenizer.ids_of([span.token for span in spans])
        return explaining.explain(
            self.probabilities_from_ids,
            self.labels,
            spans,
            ids,
            known=[i != OOV_ID for i in ids],
            unread=unread,
            max_invokes=max_invokes,
        )

    def _read(self, ids: list[int], pre: bool) -> Any:
        for length, bucket, state in self._buckets:
            if len(ids) <= length:
                return bucket.run(ids, pre, state)
        return self._full.run(ids, pre)

    def self_test(self) -> None:
        """Run every model on what it will meet: the golden texts, an empty text, and every
        position holding the largest token id (what the probe runs in its child)."""
        self.probabilities([example.text for example in self.manifest.golden.examples] + [""])
        largest = [self.tokenizer.spec.num_words - 1] * self._length
        for length, bucket, state in self._buckets:
            bucket.run(largest[:length], self._pre, state)
        self._full.run(largest, self._pre)

    def read_length(self, text: str) -> int:
        """How many steps the model reads for `text`: its bucket's length, or the full one."""
        n = min(len(self.tokenizer.to_ids(text)), self._length)
        return next((length for length, _, _ in self._buckets if n <= length), self._length)

    def predict(
        self, texts: Sequence[str], *, explain: bool = False, max_invokes: int = DEFAULT_MAX_INVOKES
    ) -> list[Prediction]:
        """Labels with probabilities; with `explain`, each with its token attributions."""
        labels = self.labels
        predictions = []
        for text, row in zip(texts, self._rows(texts), strict=True):
            best = max(range(len(row)), key=row.__getitem__)  # the first of equals, as argmax
            predictions.append(
                Prediction(
                    label=labels[best],
                    score=row[best],
                    scores=dict(zip(labels, row, strict=True)),
                    explanation=self.explain(text, max_invokes) if explain else None,
                )
            )
        return predictions

    def describe(self) -> dict[str, Any]:
        """What `GET /models/{name}` shows."""
        metrics = self.manifest.metrics or {}
        return {
            "name": self.name,
            "version": self.version,
            "labels": self.labels,
            "task": self.manifest.task,
            "metrics": {kind: report.model_dump(mode="json") for kind, report in metrics.items()},
            "created_at": self.manifest.created_at,
            "published_at": self.manifest.published_at,
            "runtime": self.runtime,
        }

    def verify_golden(self, tolerance: float | None = None) -> float:
        """Check the manifest's golden examples (within the tolerance it records, unless one is
        given); returns the largest probability difference."""
        golden = self.manifest.golden.examples
        tolerance = self.manifest.golden.tolerance if tolerance is None else tolerance
        if not golden:
            raise GoldenMismatch(f"{self.name}:{self.version} records no golden examples")
        expected = np.asarray([example.probabilities for example in golden], dtype=np.float64)
        actual = self.probabilities([example.text for example in golden])
        worst = float(np.max(np.abs(actual - expected)))
        if worst > tolerance:
            raise GoldenMismatch(
                f"{self.runtime} does not reproduce the golden examples of "
                f"{self.name}:{self.version}: largest difference {worst:.2e} > {tolerance:g}",
                max_abs_diff=worst,
            )
        return worst
