"""Keras models for the presets, and the fixed-batch copy the TFLite converter needs."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from maas.core.manifest import IDS_INPUT, LSTM_STATE_INPUTS
from maas.progress import Progress
from maas.training.native import quiet_stderr
from maas.training.presets import Preset
from maas.training.rows import ShuffledBatches

# Keep TensorFlow's C++ chatter off stderr, where the epoch log and errors go.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
with quiet_stderr():
    import keras
    from keras import layers, ops

Array = npt.NDArray[Any]


@keras.saving.register_keras_serializable(package="maas")
class MaskedMean(layers.Layer):
    """Mean of the embeddings of the real (non-padding) tokens.

    Keras' GlobalAveragePooling1D divides by the mask's sum, so a text without a single known
    token (it happens: '————') gives 0/0 = NaN, and one NaN in a batch poisons every weight.
    Here such a text averages to zeros instead, i.e. the model answers with its prior."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs: Any, mask: Any = None) -> Any:
        if mask is None:
            return ops.mean(inputs, axis=1)
        weights = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        total = ops.sum(inputs * weights, axis=1)
        return total / ops.maximum(ops.sum(weights, axis=1), 1.0)

    def compute_mask(self, inputs: Any, mask: Any = None) -> None:
        return None  # the sequence axis is gone


@keras.saving.register_keras_serializable(package="maas")
class PaddingMask(layers.Layer):
    """(batch, length, 1): 1.0 at a real token, 0.0 at padding (id 0)."""

    def call(self, ids: Any) -> Any:
        return ops.expand_dims(ops.cast(ops.not_equal(ids, 0), "float32"), -1)


@keras.saving.register_keras_serializable(package="maas")
class MaskedMax(layers.Layer):
    """Max over the real tokens of non-negative (ReLU) features: padding positions are zeroed
    first, so they can never win, and a text without a token gives zeros."""

    def call(self, inputs: Any) -> Any:
        features, mask = inputs
        return ops.max(features * mask, axis=1)


@keras.saving.register_keras_serializable(package="maas")
class MaskedMeanOf(layers.Layer):
    """Mean over the real tokens, the mask given as a second input (MaskedMean's rule for a
    text without a token: zeros)."""

    def call(self, inputs: Any) -> Any:
        features, mask = inputs
        return ops.sum(features * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1.0)


@keras.saving.register_keras_serializable(package="maas")
class PositionEmbedding(layers.Layer):
    """Adds a learned embedding of each position (0, 1, ...): the first n rows for n tokens,
    so a shorter input (a bucket) sees the same positions."""

    def __init__(self, length: int, dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.length, self.dim = length, dim

    def build(self, input_shape: Any) -> None:
        self.table = self.add_weight(
            shape=(self.length, self.dim), initializer="uniform", name="table"
        )

    def call(self, inputs: Any) -> Any:
        return inputs + self.table[: ops.shape(inputs)[1]]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "length": self.length, "dim": self.dim}


@keras.saving.register_keras_serializable(package="maas")
class TfIdfLinear(layers.Layer):
    """A linear model over the TF-IDF of the ids read, inside the network: each text's token
    counts times the tokens' idf, divided by sqrt(sum of count * idf^2) - the L2 norm of the
    text's tf-idf where no token repeats (most short texts), and computed without comparing
    positions: a sum over the ids, as cheap as the mean of embeddings - times a weight per token
    and output. `tfidf` computes the same features for scikit-learn to fit.

    Padding and the OOV token have idf 0: they count for nothing, so a shorter input (a length
    bucket) is the same model."""

    def __init__(self, vocabulary: int, outputs: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.vocabulary, self.outputs = vocabulary, outputs

    def build(self, input_shape: Any) -> None:
        self.idf = self.add_weight(
            shape=(self.vocabulary,), initializer="zeros", trainable=False, name="idf"
        )
        self.coefficients = self.add_weight(
            shape=(self.vocabulary, self.outputs), initializer="zeros", name="coefficients"
        )
        self.intercept = self.add_weight(
            shape=(self.outputs,), initializer="zeros", name="intercept"
        )

    def call(self, ids: Any) -> Any:
        idf = ops.take(self.idf, ids, axis=0)  # (batch, length): 0 at padding and OOV
        norm = ops.sqrt(ops.maximum(ops.sum(idf * idf, axis=1, keepdims=True), 1e-12))
        weights = ops.take(self.coefficients, ids, axis=0)  # (batch, length, outputs)
        return ops.sum(weights * ops.expand_dims(idf / norm, -1), axis=1) + self.intercept

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "vocabulary": self.vocabulary, "outputs": self.outputs}


def _cnn(preset: Preset, ids: Any) -> Any:
    mask = PaddingMask()(ids)
    embedded = layers.Embedding(preset.tokenizer.num_words, preset.embedding_dim)(ids)
    embedded = layers.Multiply()([embedded, mask])  # padding reads as zeros, like 'same' padding
    pooled = [
        MaskedMax()(
            [layers.Conv1D(preset.units, width, padding="same", activation="relu")(embedded), mask]
        )
        for width in preset.kernel_sizes
    ]
    x = layers.Concatenate()(pooled) if len(pooled) > 1 else pooled[0]
    return layers.Dropout(preset.dropout)(x)


def _transformer(preset: Preset, ids: Any) -> Any:
    spec, dim = preset.tokenizer, preset.embedding_dim
    mask = PaddingMask()(ids)
    x = layers.Embedding(spec.num_words, dim)(ids)
    x = PositionEmbedding(spec.max_length, dim)(x)
    x = layers.Dropout(preset.dropout)(x)
    keys = layers.Permute((2, 1))(mask)  # (batch, 1, length): which keys a query may attend to
    for _ in range(preset.blocks):
        attended = layers.MultiHeadAttention(
            num_heads=preset.heads, key_dim=dim // preset.heads, dropout=preset.dropout
        )(x, x, attention_mask=keys)
        x = layers.LayerNormalization()(layers.Add()([x, attended]))
        forward = layers.Dense(preset.units, activation="relu")(x)
        forward = layers.Dropout(preset.dropout)(layers.Dense(dim)(forward))
        x = layers.LayerNormalization()(layers.Add()([x, forward]))
    return MaskedMeanOf()([x, mask])


def token_counts(ids: Array, vocabulary: int) -> Any:
    """How often each id occurs in each row (padding and OOV left out), as a scipy CSR matrix
    of (rows, vocabulary): what the linear path is fitted on, never a dense table."""
    from scipy.sparse import csr_matrix

    real = ids > 1
    indptr = np.concatenate([[0], np.cumsum(real.sum(axis=1))])  # a row's real ids, in order
    indices = ids[real]
    counts = csr_matrix(
        (np.ones(len(indices), dtype=np.float64), indices, indptr), shape=(len(ids), vocabulary)
    )
    counts.sum_duplicates()
    return counts


def tfidf(counts: Any, idf: Array) -> Any:
    """TfIdfLinear's features from token counts: count times idf, each row divided by
    sqrt(sum of count * idf^2)."""
    from scipy.sparse import diags

    weights = idf.astype(np.float64)
    norms = np.sqrt(np.asarray(counts @ (weights * weights)).reshape(-1))
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return (diags(scale) @ counts.multiply(weights)).tocsr()


LINEAR_C_GRID: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)


def fit_linear(
    model: keras.Model, counts: Any, y: Array, validation: tuple[Any, Array], seed: int
) -> float | None:
    """Fit the model's TF-IDF linear path (if it has one) as logistic regression on the train
    split's token counts (`token_counts`) and freeze it: the network beside it then learns
    what the linear model misses. Its inverse regularisation C is the one of `LINEAR_C_GRID`
    with the lowest log-loss on the validation split's counts (`validation`; the smaller C on
    a tie): subwords multiply the features, so the baseline's C=1 is rarely the best. Returns
    that C (None: no linear path). Before compiling."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    linear = next((layer for layer in model.layers if isinstance(layer, TfIdfLinear)), None)
    if linear is None:
        return None
    documents = np.bincount(counts.indices, minlength=linear.vocabulary)  # rows holding each id
    idf = (np.log((1.0 + counts.shape[0]) / (1.0 + documents)) + 1.0).astype(np.float32)
    idf[:2] = 0.0  # padding and OOV count for nothing
    held_counts, y_held = validation
    features, held, labels = tfidf(counts, idf), tfidf(held_counts, idf), np.unique(y)
    fitted = LogisticRegression(max_iter=2000, random_state=seed, warm_start=True)
    best: tuple[float, float, Any, Any] | None = None
    for c in LINEAR_C_GRID:  # rising C, each fit starting from the last one's solution
        fitted.set_params(C=c).fit(features, y)
        loss = log_loss(y_held, fitted.predict_proba(held), labels=labels)
        if best is None or loss < best[0]:
            best = (loss, c, fitted.coef_.copy(), fitted.intercept_.copy())
    assert best is not None
    _, c, coefficients, intercept = best
    linear.idf.assign(idf)
    linear.coefficients.assign(coefficients.T.astype(np.float32))
    linear.intercept.assign(intercept.astype(np.float32))
    linear.trainable = False
    return c


def set_seeds(seed: int) -> None:
    """Python, numpy and TensorFlow seeds, and deterministic kernels: same data, same model."""
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


NETWORK_LOGITS = "network_logits"  # what the network adds to the linear model's logits


def build(preset: Preset, n_labels: int, batch_size: int | None = None) -> keras.Model:
    """The preset's architecture with its output head: one sigmoid unit for two labels (the
    probability of the second label), a softmax over the labels otherwise."""
    spec = preset.tokenizer
    ids = keras.Input(
        shape=(spec.max_length,), batch_size=batch_size, dtype="int32", name=IDS_INPUT
    )
    if preset.architecture == "lstm":
        # As the seed: no masking, the LSTM reads the padding too (hence pre-padding).
        x = layers.Embedding(spec.num_words, preset.embedding_dim)(ids)
        x = layers.LSTM(preset.units)(x)
    elif preset.architecture == "cnn":
        x = _cnn(preset, ids)
    elif preset.architecture == "transformer":
        x = _transformer(preset, ids)
    elif preset.architecture == "bilstm":
        x = layers.Embedding(spec.num_words, preset.embedding_dim, mask_zero=True)(ids)
        x = layers.Bidirectional(layers.LSTM(preset.units))(x)
        x = layers.Dropout(preset.dropout)(x)
    else:
        x = layers.Embedding(spec.num_words, preset.embedding_dim, mask_zero=True)(ids)
        x = layers.Dropout(preset.dropout)(x)
        x = MaskedMean()(x)
        if preset.units:
            x = layers.Dense(preset.units, activation="relu")(x)
            x = layers.Dropout(preset.dropout)(x)
    binary = n_labels == 2
    name, activation = ("probability", "sigmoid") if binary else ("probabilities", "softmax")
    outputs = 1 if binary else n_labels
    if not preset.linear:
        output = layers.Dense(outputs, activation=activation, name=name)(x)
        return keras.Model(ids, output, name=f"maas_{preset.name}")
    # wide and deep: the network's logits (starting at zero) added to the linear model's
    deep = layers.Dense(outputs, kernel_initializer="zeros", name=NETWORK_LOGITS)(x)
    logits = layers.Add()([TfIdfLinear(spec.num_words, outputs)(ids), deep])
    return keras.Model(
        ids, layers.Activation(activation, name=name)(logits), name=f"maas_{preset.name}"
    )


def compile_model(model: keras.Model, preset: Preset, n_labels: int) -> None:
    loss = "binary_crossentropy" if n_labels == 2 else "sparse_categorical_crossentropy"
    model.compile(
        optimizer=keras.optimizers.Adam(preset.learning_rate), loss=loss, metrics=["accuracy"]
    )


def describe_layers(model: keras.Model) -> list[dict[str, Any]]:
    """The trained model's layers as the manifest records them (so a reader can check that a
    preset built what it promises, e.g. the seed's Embedding(1000, 16) -> LSTM(32) -> Dense)."""
    described = []
    for layer in model.layers:
        config = layer.get_config()
        entry: dict[str, Any] = {"type": type(layer).__name__}
        keys = ("input_dim", "output_dim", "mask_zero", "units", "activation", "rate")
        for key in (*keys, "filters", "kernel_size", "num_heads", "key_dim"):
            if key in config:
                entry[key] = config[key]
        if isinstance(layer, keras.layers.InputLayer):
            entry["shape"] = list(config["batch_shape"][1:])
            entry["dtype"] = str(config["dtype"]) if isinstance(config["dtype"], str) else "int32"
        described.append(entry)
    return described


class EpochLog(keras.callbacks.Callback):
    """Training's progress on stderr (stdout is kept for the job's summary): a bar over the
    epochs on a terminal, one line per epoch otherwise (logs, CI, a pipe)."""

    def __init__(self, max_epochs: int, bar: bool | None = None) -> None:
        super().__init__()
        self.max_epochs = max_epochs
        self._started = 0.0
        self._bar = Progress("training", max_epochs, "epoch", bar)
        self._lines = not self._bar.shown

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        if self._lines:
            values = " ".join(f"{key} {value:.4f}" for key, value in sorted(logs.items()))
            seconds = time.perf_counter() - self._started
            print(
                f"epoch {epoch + 1}/{self.max_epochs}: {values} ({seconds:.1f} s)", file=sys.stderr
            )
        else:
            shown = {k: f"{v:.4f}" for k, v in logs.items() if k in ("loss", "val_accuracy")}
            self._bar.advance(1, **shown)

    def on_train_end(self, logs: dict[str, float] | None = None) -> None:
        self._bar.close()  # early stopping ends it before max_epochs


@dataclass(frozen=True)
class TrainingResult:
    history: dict[str, list[float]]
    epochs_run: int
    best_epoch: int  # 1-based; the weights kept are this epoch's
    seconds: float
    # a preset with a linear path: the linear model alone on the validation split (before
    # the network trained), and whether the network was kept - it is zeroed when it did not
    # lower the validation loss below that
    linear_validation: dict[str, float] | None = None
    network_kept: bool = True
    linear_c: float | None = None  # the linear path's C, chosen on validation (`fit_linear`)

    @property
    def validation_accuracy(self) -> float:
        """The kept model's accuracy on the validation split."""
        if not self.network_kept and self.linear_validation is not None:
            return self.linear_validation["accuracy"]
        return self.history["val_accuracy"][self.best_epoch - 1]


def train(
    model: keras.Model,
    preset: Preset,
    x_train: Array | ShuffledBatches,
    y_train: Array | None,
    x_validation: Array,
    y_validation: Array,
) -> TrainingResult:
    """Fit with early stopping on validation; the train split as arrays, or as the batches
    of a streamed file (`maas.training.stream`; `y_train` None)."""
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=preset.patience, restore_best_weights=True
    )
    if isinstance(x_train, ShuffledBatches):
        given: dict[str, Any] = {"x": _Batches(x_train), "shuffle": False}  # it shuffles itself
    else:
        given = {"x": x_train, "y": y_train, "batch_size": preset.batch_size}
    linear = None
    if preset.linear:
        linear = model.evaluate(x_validation, y_validation, verbose=0, return_dict=True)
    started = time.perf_counter()
    fitted = model.fit(
        **given,
        validation_data=(x_validation, y_validation),
        epochs=preset.max_epochs,
        callbacks=[stop, EpochLog(preset.max_epochs)],
        verbose=0,
    )
    seconds = time.perf_counter() - started
    history = {key: [float(v) for v in values] for key, values in fitted.history.items()}
    best = int(np.argmin(history["val_loss"])) + 1
    kept = linear is None or min(history["val_loss"]) < linear["loss"]
    if not kept:  # the linear model alone did better: serve it (the network adds zero)
        head = model.get_layer(NETWORK_LOGITS)
        head.set_weights([np.zeros_like(weight) for weight in head.get_weights()])
    validation = None if linear is None else {key: float(v) for key, v in linear.items()}
    return TrainingResult(history, len(history["loss"]), best, seconds, validation, kept)


class _Batches(keras.utils.PyDataset):
    """`ShuffledBatches` as Keras reads a dataset: batch i, then a new order each epoch."""

    def __init__(self, batches: ShuffledBatches) -> None:
        super().__init__()
        self._batches = batches

    def __len__(self) -> int:
        return len(self._batches)

    def __getitem__(self, index: int) -> tuple[Array, Array]:
        return self._batches.batch(index)

    def on_epoch_end(self) -> None:
        self._batches.next_epoch()


def probabilities(model: keras.Model, x: Array) -> Array:
    """(n, n_labels) probabilities, the shape `Classifier.probabilities` gives."""
    raw = np.asarray(model.predict(x, batch_size=256, verbose=0), dtype=np.float32)
    return np.hstack([1.0 - raw, raw]) if raw.shape[1] == 1 else raw


def fixed_batch_copy(
    model: keras.Model, batch_size: int = 1, length: int | None = None
) -> keras.Model:
    """The same model and weights with a static batch dimension: TFLite cannot convert a Keras 3
    LSTM with a dynamic batch, and the serving input is one text at a time anyway. With
    `length`, the copy reads sequences of that many tokens instead (a length bucket)."""
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "InputLayer":
            shape = layer["config"]["batch_shape"]
            sequence = shape[1:] if length is None else [length, *shape[2:]]
            layer["config"]["batch_shape"] = [batch_size, *sequence]
    copy = keras.Model.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def state_copy(model: keras.Model, length: int) -> keras.Model:
    """The LSTM model (Embedding -> LSTM -> Dense head, as `build` makes it) continued from a
    given LSTM state: inputs ids (1, length), h0 and c0 (1, units); outputs, in this order, the
    head's probabilities and the LSTM's final h and c. Same layers, same weights.

    The seed's LSTM reads its padding (pre-padded, no mask), so a shorter input is not the
    same model. But the padding comes first: started from the state the full model reaches
    after its leading padding, a `length`-step copy reads exactly the steps the full model
    would read next, and answers the same, while skipping the padding steps."""
    embedding, lstm, head = (
        next(layer for layer in model.layers if isinstance(layer, kind))
        for kind in (layers.Embedding, layers.LSTM, layers.Dense)
    )
    # the classifier feeds these by name (maas.core.manifest.LSTM_STATE_INPUTS)
    ids = keras.Input(shape=(length,), batch_size=1, dtype="int32", name=IDS_INPUT)
    h0, c0 = (keras.Input(shape=(lstm.units,), batch_size=1, name=n) for n in LSTM_STATE_INPUTS)
    copies = (
        layers.Embedding.from_config(embedding.get_config()),
        layers.LSTM.from_config({**lstm.get_config(), "return_state": True}),
        layers.Dense.from_config(head.get_config()),
    )
    sequence, h, c = copies[1](copies[0](ids), initial_state=[h0, c0])
    copy = keras.Model([ids, h0, c0], [copies[2](sequence), h, c])
    for layer, original in zip(copies, (embedding, lstm, head), strict=True):
        layer.set_weights(original.get_weights())
    return copy
