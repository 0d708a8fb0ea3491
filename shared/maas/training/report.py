"""What people read: the confusion matrix and training curves (PNG) and the model card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from maas.core.manifest import Manifest, TrainingRun
from maas.core.tokenizer import TokenizerSpec

CONFUSION_PNG = "confusion-matrix.png"
CURVES_PNG = "training-curves.png"
MODEL_CARD = "model-card.md"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display on a build machine
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(matrix: list[list[int]], labels: list[str], path: Path) -> None:
    plt = _pyplot()
    counts = np.asarray(matrix)
    size = 2.5 + 0.6 * len(labels)
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(counts, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("Test split, quantized model")
    threshold = counts.max() / 2 if counts.size else 0
    for (row, column), value in np.ndenumerate(counts):
        colour = "white" if value > threshold else "black"
        axes.text(column, row, str(value), ha="center", va="center", color=colour)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_curves(history: dict[str, list[float]], best_epoch: int, path: Path) -> None:
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    figure, panels = plt.subplots(1, 2, figsize=(9, 3.5))
    epochs = range(1, len(history["loss"]) + 1)
    for axes, metric in zip(panels, ("loss", "accuracy"), strict=True):
        axes.plot(epochs, history[metric], marker="o", label="train")
        axes.plot(epochs, history[f"val_{metric}"], marker="o", label="validation")
        axes.axvline(best_epoch, color="grey", linestyle="--", label="kept (best val loss)")
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_title(metric)
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _layer(layer: dict[str, Any]) -> str:
    """'Embedding(20000, 64)', 'Dense(1, sigmoid)', 'Dropout(0.3)' from the manifest's record."""
    if "input_dim" in layer:
        arguments = [layer["input_dim"], layer["output_dim"]]
    elif "units" in layer:
        activation = layer.get("activation")
        arguments = [layer["units"], *([activation] if activation not in (None, "linear") else [])]
    elif "rate" in layer:
        arguments = [layer["rate"]]
    else:
        return str(layer["type"])
    if layer["type"] == "LSTM":
        arguments = arguments[:1]  # tanh is the LSTM's own default
    return f"{layer['type']}({', '.join(map(str, arguments))})"


def _kb(size: int) -> str:
    return f"{size / 1024:,.0f} KB"


def _interval(interval: list[float] | None) -> str:
    return f"{interval[0]:.3f} – {interval[1]:.3f}" if interval else "—"


def _notes(manifest: Manifest) -> str:
    if not manifest.notes:
        return ""
    return "\n" + "\n".join(f"> **Note:** {note}\n" for note in manifest.notes)


def _cross_validation(manifest: Manifest) -> str:
    cv = manifest.cross_validation
    if not cv:
        return ""
    folds = ", ".join(f"{fold['accuracy']:.3f}" for fold in cv["folds"])
    return (
        f"\n{cv['k']}-fold cross-validation on train + validation: accuracy "
        f"{cv['accuracy_mean']:.4f} ± {cv['accuracy_std']:.4f} (folds {folds}; 95 % interval "
        f"{_interval(cv['accuracy_interval'])}), baseline {cv['baseline_mean']:.4f}.\n"
    )


def _candidates(manifest: Manifest) -> str:
    if not manifest.candidates:
        return ""
    rows = []
    for c in manifest.candidates:
        if "skipped" in c:
            rows.append(f"| {c['preset']} | — | — | skipped: {c['skipped']} |")
        else:
            chosen = "**chosen**" if c["chosen"] else ""
            rows.append(
                f"| {c['preset']} | {c['validation_accuracy']:.4f} | {c['seconds']:.1f} s "
                f"| {chosen} |"
            )
    return (
        "\n`--preset auto` candidates (trained on the train split, compared on validation):\n\n"
        "| preset | validation accuracy | training | |\n| --- | --- | --- | --- |\n"
        + "\n".join(rows)
        + "\n"
    )


def _linear(training: TrainingRun) -> str:
    if training.linear_validation is None:
        return ""
    alone = training.linear_validation
    chosen = "" if training.linear_c is None else f"C={training.linear_c:g} chosen on validation; "
    scores = f"{chosen}validation loss {alone['loss']:.4f}, accuracy {alone['accuracy']:.4f}"
    if training.network_kept:
        return (
            "\n- Wide and deep: a TF-IDF logistic regression over the same ids (fitted first,"
            f"\n  then frozen; alone: {scores}) plus the network's correction to its logits"
        )
    return (
        "\n- The network did not lower the validation loss of the TF-IDF logistic regression"
        f"\n  beside it ({scores}): it was zeroed, and the model answers as that linear model"
    )


def _subwords(spec: TokenizerSpec) -> str:
    if not spec.subword_ngrams:
        return ""
    sizes = ", ".join(map(str, spec.subword_ngrams))
    return (
        f"\n- Each word is read with its character n-grams (sizes {sizes}) as tokens of their"
        "\n  own: an unseen word still counts through its pieces; explanations name the word."
    )


def model_card(manifest: Manifest) -> str:
    """A short Markdown card from the manifest, so the card can never disagree with it."""
    labels, data, metrics = manifest.labels, manifest.data or {}, manifest.metrics or {}
    spec, sizes, training = manifest.tokenizer, manifest.sizes or {}, manifest.training
    gate, hyperparameters = manifest.quality_gate, manifest.hyperparameters or {}
    assert gate is not None and training is not None, "a trained manifest records both"
    rows = [
        ("Keras float", metrics["float"]),
        ("TFLite dynamic-range int8 (served)", metrics["quantized"]),
        ("Baseline: TF-IDF + logistic regression", metrics["baseline"]),
    ]
    metric_table = "\n".join(
        f"| {name} | {m.accuracy:.4f} | {_interval(m.accuracy_interval)} | {m.macro_f1:.4f} |"
        for name, m in rows
    )
    per_class = "\n".join(
        f"| {label} | {c.precision:.3f} | {c.recall:.3f} | {c.f1:.3f} | {c.support} |"
        for label, c in metrics["quantized"].per_class.items()
    )
    layers = " → ".join(
        _layer(layer) for layer in hyperparameters["layers"] if layer["type"] != "InputLayer"
    )
    kept = "first" if spec.truncating == "post" else "last"
    gate_text = "passed" if gate.passed else ("overridden" if gate.overridden else "FAILED")
    counts = ", ".join(f"{label} {n}" for label, n in data["labels_count"].items())
    split = data["splits"]
    splits = f"train {split['train']}, validation {split['validation']}, test {split['test']}"
    if "streamed" in data:
        splits += (
            " (the file read once: ten rows of a label at a time, one to validation and one "
            f"to test, each sampled to at most {data['streamed']['held_out_at_most']:,}; the "
            f"baseline fitted on {data['streamed']['baseline_sample']:,} train rows)"
        )
    return f"""# Text classifier: {", ".join(labels)}

**What:** a {manifest.task} text classifier that gives each text a probability for every
label. **For whom:** applications that call the maas HTTP or queue functions with texts like
those in `{data["source"]}`.

## Data

- Source: `{data["source"]}`, {data["rows"]} rows, fingerprint `{data["fingerprint"][:16]}…`
- Labels: {counts}
- Stratified split: {splits}

## Test-split metrics (n = {metrics["quantized"].n})

| model | accuracy | 95 % interval | macro-F1 |
| --- | --- | --- | --- |
{metric_table}
{_notes(manifest)}{_cross_validation(manifest)}{_candidates(manifest)}
Quality gate (quantized at most {gate.max_accuracy_drop} accuracy below float): {gate_text}
(drop {gate.accuracy_drop:+.4f}).

### Per class (quantized model)

| label | precision | recall | F1 | support |
| --- | --- | --- | --- | --- |
{per_class}

![Confusion matrix](confusion-matrix.png)

## Training

- Preset `{manifest.preset}`: token ids [{spec.max_length}] → {layers}
- {training.epochs_run} epochs, weights of epoch {training.best_epoch} kept (best validation
  loss), {training.seconds:.1f} s{_linear(training)}
- Sizes: Keras {_kb(sizes["keras_bytes"])} (with optimizer state), TFLite float
  {_kb(sizes["tflite_float_bytes"])}, served quantized model {_kb(sizes["tflite_quantized_bytes"])}

![Training curves](training-curves.png)

## Limitations

- Measured on a held-out split of the same source only; texts from another domain, period or
  language will score lower, and the probabilities are not calibrated.
- It knows at most the {spec.num_words - 2:,} most frequent training tokens (others count
  as unknown) and reads only the {kept} {spec.max_length} tokens of a long text.{_subwords(spec)}
- A text with no known token still gets an answer (the model's bias), not an error.
- The golden examples in the manifest check the runtime reproduces this model, not that its
  answers are right.
"""
