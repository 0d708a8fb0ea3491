"""The training job, start to finish: data -> model -> TFLite -> evaluation -> artifact.

The artifact is assembled in a hidden staging directory next to `--out` and moved into place
only when complete, so a crash never leaves half an artifact behind. The quantized model is
evaluated through `Classifier.open`, i.e. the code path that serves it.
"""

from __future__ import annotations

import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from maas.client.data import FileOptions
from maas.core import manifest as artifact
from maas.core.manifest import Manifest
from maas.core.metrics import classification_report
from maas.core.tokenizer import Tokenizer
from maas.errors import BadData, ErrorCode
from maas.training import buckets, export, quality, splits, stream
from maas.training.options import AUTO, STREAM_ABOVE, TrainingOptions
from maas.training.presets import AUTO_CANDIDATES, PRESETS, Preset

Array = npt.NDArray[Any]


def run(options: TrainingOptions) -> Manifest:
    """Train, export, evaluate and write the artifact. The quality gate's verdict is in the
    manifest; `quality.enforce` turns a failed gate into an error."""
    preset = None if options.preset == AUTO else PRESETS[options.preset].with_epochs(options.epochs)
    check_out(options.out)
    data = load(options, preset)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{options.out.name}.", dir=options.out.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the artifact is meant to be read
    try:
        manifest = build_artifact(staging, data, preset, options)
        if options.out.exists():
            shutil.rmtree(options.out)
        staging.rename(options.out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def load(options: TrainingOptions, preset: Preset | None) -> splits.LabelledData:
    """The data, split: held in memory, or read once and trained from disk when the file is
    large or `--stream` says so (`maas.training.stream`)."""
    file_options = FileOptions(encoding=options.encoding, delimiter=options.delimiter)
    columns = (options.data, options.text_column, options.label_column, options.seed)
    if not stream.wanted(options.data, options.stream):
        return splits.load(*columns, file_options)
    if options.cv:
        raise BadData(
            "--cv is for datasets small enough to hold in memory; a streamed file "
            f"(--stream, or one over {STREAM_ABOVE}) has enough rows for its test split to decide"
        )
    spec = (preset or PRESETS[AUTO_CANDIDATES[0]]).tokenizer
    return stream.load(*columns, spec, options.out.parent, file_options)


def check_out(out: Path) -> None:
    """Only an empty directory or an earlier artifact may be replaced: never a user's files."""
    if out.exists() and not out.is_dir():
        raise BadData(f"--out {out} is a file, not a directory", code=ErrorCode.BAD_OUTPUT)
    if out.is_dir() and any(out.iterdir()) and not (out / artifact.MANIFEST).is_file():
        raise BadData(
            f"--out {out} is not empty and holds no model artifact; refusing to overwrite it",
            code=ErrorCode.BAD_OUTPUT,
        )


@dataclass
class Fitted:
    """One preset trained on the train split (early stopping on validation)."""

    preset: Preset
    tokenizer: Tokenizer
    encoded: dict[str, Array]
    model: Any
    trained: Any  # models.TrainingResult

    @property
    def validation_accuracy(self) -> float:
        return float(self.trained.validation_accuracy)


def fit(preset: Preset, data: splits.LabelledData, seed: int) -> Fitted:
    from maas.training import models

    models.set_seeds(seed)
    if data.streamed:
        tokenizer = data.streamed.tokenizer(preset.tokenizer)
    else:
        tokenizer = Tokenizer.fit(data.train.texts, preset.tokenizer)
    tokenizer, preset = sized(tokenizer, preset)
    encoded = {
        name: tokenizer.encode(part.texts)
        for name, part in (("validation", data.validation), ("test", data.test))
    }
    model = models.build(preset, len(data.labels))
    x_train = None if data.streamed else tokenizer.encode(data.train.texts)
    linear_c = None
    if preset.linear:  # on the train split, or of a streamed file the sample the baseline fits
        if x_train is None:
            counts = train_counts(tokenizer, data.train.texts)
        else:
            counts = models.token_counts(x_train, tokenizer.spec.num_words)
        held = models.token_counts(encoded["validation"], tokenizer.spec.num_words)
        linear_c = models.fit_linear(model, counts, data.train.y, (held, data.validation.y), seed)
    models.compile_model(model, preset, len(data.labels))
    validation = (encoded["validation"], data.validation.y)
    if x_train is not None:
        trained = models.train(model, preset, x_train, data.train.y, *validation)
    else:
        assert data.streamed is not None
        with data.streamed.encode(tokenizer) as rows:
            batches = rows.batches(preset.batch_size, seed)
            trained = models.train(model, preset, batches, None, *validation)
    return Fitted(preset, tokenizer, encoded, model, replace(trained, linear_c=linear_c))


def train_counts(tokenizer: Tokenizer, texts: list[str], chunk: int = 4096) -> Any:
    """The texts' token counts (`models.token_counts`), encoded a chunk at a time: never the
    whole dense id matrix of a large sample."""
    from scipy.sparse import vstack

    from maas.training import models

    size = tokenizer.spec.num_words
    parts = [
        models.token_counts(tokenizer.encode(texts[start : start + chunk]), size)
        for start in range(0, len(texts), chunk)
    ]
    return vstack(parts, format="csr")  # a train split is never empty (splits refuses it)


def linear_record(trained: Any) -> dict[str, Any]:
    """What the manifest records of a linear path: its validation scores, its C, the network's
    fate."""
    if trained.linear_validation is None:
        return {}
    scores = {key: round(value, 6) for key, value in trained.linear_validation.items()}
    return {
        "linear_validation": scores,
        "network_kept": trained.network_kept,
        "linear_c": trained.linear_c,
    }


def sized(tokenizer: Tokenizer, preset: Preset) -> tuple[Tokenizer, Preset]:
    """The fitted tokenizer cut to its vocabulary and the preset built to that size, where the
    preset sizes its embedding from the data (`Preset.sized_vocabulary`)."""
    if not preset.sized_vocabulary:
        return tokenizer, preset
    tokenizer = tokenizer.sized()
    return tokenizer, replace(preset, tokenizer=tokenizer.spec)


def choose(
    data: splits.LabelledData, seed: int, budget_s: float, epochs: int | None = None
) -> tuple[Fitted, list[dict[str, Any]]]:
    """`--preset auto`: train the candidates (cheapest first) while the time budget lasts
    (the first always), keep the best on the validation split; all of them are reported."""
    started = time.perf_counter()
    best: Fitted | None = None
    report: list[dict[str, Any]] = []
    for name in AUTO_CANDIDATES:
        elapsed = time.perf_counter() - started
        trained = [entry["seconds"] for entry in report if "seconds" in entry]
        last = trained[-1] if trained else 0.0
        if best is not None and elapsed + last > budget_s:
            report.append({"preset": name, "skipped": f"time budget ({budget_s:g} s)"})
            continue
        print(f"auto: training the {name} preset", file=sys.stderr, flush=True)
        fitted = fit(PRESETS[name].with_epochs(epochs), data, seed)
        report.append(
            {
                "preset": name,
                "validation_accuracy": round(fitted.validation_accuracy, 6),
                "epochs": fitted.trained.epochs_run,
                "seconds": round(fitted.trained.seconds, 2),
            }
        )
        if best is None or fitted.validation_accuracy > best.validation_accuracy:
            best = fitted
    assert best is not None
    for entry in report:
        entry["chosen"] = entry["preset"] == best.preset.name
    return best, report


def build_artifact(
    directory: Path, data: splits.LabelledData, preset: Preset | None, options: TrainingOptions
) -> Manifest:
    from maas.training import models  # TensorFlow loads here, after the input was checked

    n_labels = len(data.labels)
    candidates = None
    if preset is None:  # --preset auto
        fitted, candidates = choose(data, options.seed, options.time_budget, options.epochs)
    else:
        fitted = fit(preset, data, options.seed)
    preset, tokenizer, encoded = fitted.preset, fitted.tokenizer, fitted.encoded
    model, trained = fitted.model, fitted.trained
    float_probabilities = models.probabilities(model, encoded["test"])
    plan = export.bucket_plan(preset.architecture, preset.tokenizer)
    sizes = export_model(model, directory, plan)
    tokenizer.save(directory / artifact.TOKENIZER)

    draft = serving_manifest(data.labels, tokenizer)
    # Preliminary manifest: lets the serving code open (and verify) the model for evaluation.
    # It names no buckets yet: the evaluation and the golden examples use the full model.
    artifact.write_manifest(directory, Manifest.model_validate(draft))
    evaluation = evaluate(directory, data, float_probabilities, tokenizer, options)
    draft.update(evaluation)
    if plan:
        checked, golden = buckets.check(directory, plan, data.test.texts)
        draft["buckets"] = checked.model_dump(mode="json", exclude_none=True) if checked else None
        known = {example["text"] for example in draft["golden"]["examples"]}
        draft["golden"]["examples"] += [g.model_dump() for g in golden if g.text not in known]
    draft.update(
        preset=preset.name,
        hyperparameters=hyperparameters(preset, options.seed, n_labels, model),
        sizes=sizes,
        data=describe_data(data),
        libraries=library_versions(evaluation["golden"]["runtime"]),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        training={
            "epochs_run": trained.epochs_run,
            "best_epoch": trained.best_epoch,
            "seconds": round(trained.seconds, 2),
            **linear_record(trained),
        },
    )
    notes = evaluation_notes(draft["metrics"], trained, streamed=data.streamed is not None)
    if data.streamed and len(data.train.texts) < data.train_rows:
        notes.append(
            f"The baseline was fitted on a sample of {len(data.train.texts):,} of the "
            f"{data.train_rows:,} train rows (the model on all of them)."
        )
    draft["notes"] = notes or None
    draft["candidates"] = candidates
    if options.cv:
        draft["cross_validation"] = cross_validate(preset, data, options.seed, options.cv)
    manifest = Manifest.model_validate(draft)
    write_report(directory, manifest, trained.history, trained.best_epoch)
    return artifact.write_manifest(directory, manifest)  # last: it digests every other file


def export_model(
    model: Any, directory: Path, plan: export.BucketPlan | None = None
) -> dict[str, int]:
    with tempfile.TemporaryDirectory() as work:
        keras_path = Path(work) / "model.keras"
        model.save(keras_path)
        exported = export.export(keras_path, Path(work), plan)
        shutil.copyfile(exported.quantized_model, directory / artifact.MODEL)
        for path in exported.bucket_files:
            shutil.copyfile(path, directory / path.name)
        return {
            "keras_bytes": keras_path.stat().st_size,
            "tflite_float_bytes": exported.float_model.stat().st_size,
            "tflite_quantized_bytes": exported.quantized_model.stat().st_size,
        }


def serving_manifest(labels: list[str], tokenizer: Tokenizer) -> dict[str, Any]:
    """The keys serving needs to open the model (golden examples are filled in later): a
    draft of the manifest, validated as a `Manifest` when it is written."""
    binary = len(labels) == 2
    return {
        "labels": labels,
        "task": "binary" if binary else "multiclass",
        "input": {"dtype": "int32", "shape": [1, tokenizer.spec.max_length]},
        "output": {
            "activation": "sigmoid" if binary else "softmax",
            "shape": [1, 1 if binary else len(labels)],
        },
        "tokenizer": tokenizer.spec.to_dict(),
        "golden": {"runtime": None, "tolerance": artifact.GOLDEN_TOLERANCE, "examples": []},
    }


def evaluate(
    directory: Path,
    data: splits.LabelledData,
    float_probabilities: Array,
    tokenizer: Tokenizer,
    options: TrainingOptions,
) -> dict[str, Any]:
    """Float vs quantized (served) vs baseline on the test split, the gate, golden examples."""
    from maas.core.classifier import Classifier
    from maas.training import baseline

    served = Classifier.open(directory)
    quantized_probabilities = served.probabilities(data.test.texts)
    baseline_predictions = baseline.predict(
        tokenizer.spec, data.train.texts, data.train.y, data.test.texts, options.seed
    )
    y_test = data.test.y.tolist()

    def report(predictions: Array) -> dict[str, Any]:
        return classification_report(y_test, predictions.tolist(), data.labels)

    metrics = {
        "float": report(float_probabilities.argmax(axis=1)),
        "quantized": report(quantized_probabilities.argmax(axis=1)),
        "baseline": report(baseline_predictions),
    }
    gate = quality.quality_gate(
        metrics["float"]["accuracy"],
        metrics["quantized"]["accuracy"],
        override=options.allow_quality_drop,
        max_probability_difference=float(
            np.abs(quantized_probabilities - float_probabilities).max()
        ),
        test_texts=len(y_test),
    )
    rows = quality.golden_rows(y_test, len(data.labels))
    golden = quality.golden(data.test.texts, quantized_probabilities, rows, served.runtime)
    return {"metrics": metrics, "quality_gate": gate, "golden": golden}


OVERFITTING_GAP = 0.10  # train vs validation accuracy at the kept epoch


def evaluation_notes(metrics: dict[str, Any], trained: Any, streamed: bool = False) -> list[str]:
    """What a reader of the numbers should know: a test split too small to tell the model
    from the baseline, and a model that fits its training data far better than new data.
    (A streamed file cannot be cross-validated: the advice leaves --cv out.)"""
    notes = []
    firmer = "More labelled data gives" if streamed else "More labelled data, or --cv K, gives"
    model, base = metrics["quantized"], metrics["baseline"]
    low, high = model["accuracy_interval"]
    base_low, base_high = base["accuracy_interval"]
    if low <= base_high and base_low <= high:
        notes.append(
            f"The test split (n={model['n']}) is too small to tell this model from the "
            f"baseline: accuracy {model['accuracy']:.3f} [{low:.3f}, {high:.3f}] vs "
            f"{base['accuracy']:.3f} [{base_low:.3f}, {base_high:.3f}] (95 % intervals "
            f"overlap). {firmer} a firmer answer."
        )
    history, epoch = trained.history, trained.best_epoch - 1
    if "accuracy" in history and "val_accuracy" in history:
        train_accuracy, validation = history["accuracy"][epoch], history["val_accuracy"][epoch]
        if train_accuracy - validation > OVERFITTING_GAP:
            notes.append(
                f"Overfitting: at the kept epoch ({epoch + 1}) training accuracy is "
                f"{train_accuracy:.3f} but validation {validation:.3f}. The model memorises "
                "its training texts; more data, or a smaller preset, generalises better."
            )
    return notes


def cross_validate(preset: Preset, data: splits.LabelledData, seed: int, k: int) -> dict[str, Any]:
    """k-fold cross-validation of the preset (and the baseline) on train + validation: each
    fold held out once and scored; the rest trains, with a tenth of it for early stopping."""
    from sklearn.model_selection import StratifiedKFold, train_test_split

    from maas.core.metrics import wilson_interval
    from maas.training import baseline, models

    texts = data.train.texts + data.validation.texts
    y = np.concatenate([data.train.y, data.validation.y])
    folds = []
    for index, (rest, held) in enumerate(
        StratifiedKFold(k, shuffle=True, random_state=seed).split(texts, y)
    ):
        print(f"cross-validation: fold {index + 1}/{k}", file=sys.stderr, flush=True)
        inner, stop = train_test_split(rest, test_size=0.1, stratify=y[rest], random_state=seed)
        models.set_seeds(seed)
        tokenizer, built = sized(Tokenizer.fit([texts[i] for i in inner], preset.tokenizer), preset)
        encoded = {
            name: tokenizer.encode([texts[i] for i in rows])
            for name, rows in (("inner", inner), ("stop", stop), ("held", held))
        }
        model = models.build(built, len(data.labels))
        if built.linear:
            size = built.tokenizer.num_words
            counts, stopping = (
                models.token_counts(encoded[part], size) for part in ("inner", "stop")
            )
            models.fit_linear(model, counts, y[inner], (stopping, y[stop]), seed)
        models.compile_model(model, built, len(data.labels))
        models.train(model, built, encoded["inner"], y[inner], encoded["stop"], y[stop])
        predicted = models.probabilities(model, encoded["held"]).argmax(axis=1)
        base = baseline.predict(
            tokenizer.spec, [texts[i] for i in rest], y[rest], [texts[i] for i in held], seed
        )
        correct, base_correct = int((predicted == y[held]).sum()), int((base == y[held]).sum())
        folds.append(
            {
                "n": len(held),
                "correct": correct,
                "accuracy": round(correct / len(held), 6),
                "baseline": round(base_correct / len(held), 6),
            }
        )
    accuracies = [f["accuracy"] for f in folds]
    total = sum(int(f["n"]) for f in folds)
    correct = sum(int(f["correct"]) for f in folds)
    return {
        "k": k,
        "accuracy_mean": round(float(np.mean(accuracies)), 6),
        "accuracy_std": round(float(np.std(accuracies, ddof=1)), 6) if k > 1 else 0.0,
        "accuracy_interval": wilson_interval(correct, total),
        "baseline_mean": round(float(np.mean([f["baseline"] for f in folds])), 6),
        "folds": folds,
    }


def hyperparameters(preset: Preset, seed: int, n_labels: int, model: Any) -> dict[str, Any]:
    from maas.training import baseline, models

    settings = preset.to_dict()
    del settings["name"], settings["tokenizer"]  # recorded as `preset` and `tokenizer`
    return {
        **settings,
        "optimizer": "adam",
        "loss": "binary_crossentropy" if n_labels == 2 else "sparse_categorical_crossentropy",
        "early_stopping": {"monitor": "val_loss", "restore_best_weights": True},
        "seed": seed,
        "split": {
            "train": round(1 - splits.TEST_FRACTION - splits.VALIDATION_FRACTION, 2),
            "validation": splits.VALIDATION_FRACTION,
            "test": splits.TEST_FRACTION,
            "stratified": True,
        },
        # what was actually built, so a reader can check the preset kept its promise
        "layers": models.describe_layers(model),
        "parameters": int(model.count_params()),
        "baseline": baseline.DESCRIPTION,
    }


def describe_data(data: splits.LabelledData) -> dict[str, Any]:
    described: dict[str, Any] = {
        "source": data.source,
        "fingerprint": data.fingerprint,
        "rows": data.rows,
        "labels_count": data.label_counts,
        "splits": {
            "train": data.train_rows,
            "validation": len(data.validation.texts),
            "test": len(data.test.texts),
        },
    }
    if data.streamed:
        described["streamed"] = {
            "held_out_at_most": stream.HOLDOUT_ROWS,
            "baseline_sample": len(data.train.texts),
        }
    return described


def library_versions(interpreter: str) -> dict[str, str]:
    import keras
    import sklearn
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "interpreter": interpreter,
    }


def write_report(
    directory: Path, manifest: Manifest, history: dict[str, list[float]], best_epoch: int
) -> None:
    from maas.training import report

    quantized = (manifest.metrics or {})["quantized"]
    report.plot_confusion(
        quantized.confusion_matrix, manifest.labels, directory / report.CONFUSION_PNG
    )
    report.plot_curves(history, best_epoch, directory / report.CURVES_PNG)
    (directory / report.MODEL_CARD).write_text(report.model_card(manifest), encoding="utf-8")


def summary(manifest: Manifest, out: Path) -> str:
    """The few lines printed at the end of a run."""
    metrics, sizes = manifest.metrics or {}, manifest.sizes or {}
    gate, training = manifest.quality_gate, manifest.training
    assert gate is not None and training is not None, "a trained manifest records both"
    labels = ", ".join(manifest.labels)
    lines = [f"model artifact: {out}  ({manifest.preset} preset, {manifest.task}: {labels})"]
    for name in ("float", "quantized", "baseline"):
        m = metrics[name]
        low, high = m.accuracy_interval or (0.0, 1.0)
        lines.append(
            f"  {name:<9} accuracy {m.accuracy:.4f} [95 % {low:.3f}-{high:.3f}]  "
            f"macro-F1 {m.macro_f1:.4f}  (test n={m.n})"
        )
    verdict = "passed" if gate.passed else "overridden" if gate.overridden else "FAILED"
    lines += [
        f"  quality gate {verdict}: accuracy drop {gate.accuracy_drop:+.4f} "
        f"(max {gate.max_accuracy_drop})",
        f"  training: {training.epochs_run} epochs (best {training.best_epoch}), "
        f"{training.seconds:.1f} s",
        f"  sizes: keras {sizes['keras_bytes']:,} B, "
        f"tflite float {sizes['tflite_float_bytes']:,} B, "
        f"tflite quantized {sizes['tflite_quantized_bytes']:,} B",
    ]
    if manifest.cross_validation:
        cv = manifest.cross_validation
        lines.append(
            f"  {cv['k']}-fold cross-validation: accuracy {cv['accuracy_mean']:.4f} "
            f"± {cv['accuracy_std']:.4f}, baseline {cv['baseline_mean']:.4f}"
        )
    for candidate in manifest.candidates or ():
        if "skipped" in candidate:
            lines.append(f"  auto: {candidate['preset']} skipped ({candidate['skipped']})")
        else:
            mark = "  <- chosen" if candidate["chosen"] else ""
            lines.append(
                f"  auto: {candidate['preset']:<11} validation accuracy "
                f"{candidate['validation_accuracy']:.4f} ({candidate['seconds']:.1f} s){mark}"
            )
    lines += [f"  note: {note}" for note in manifest.notes or ()]
    return "\n".join(lines)
