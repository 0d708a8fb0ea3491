"""Model presets: everything that decides what is trained, in one immutable record."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from maas.core.tokenizer import TokenizerSpec

Architecture = Literal["lstm", "mean_embedding", "cnn", "bilstm", "transformer"]


@dataclass(frozen=True)
class Preset:
    name: str
    tokenizer: TokenizerSpec
    architecture: Architecture
    embedding_dim: int
    # LSTM units (lstm) or the hidden Dense layer's width (mean_embedding; 0 = no hidden layer)
    units: int
    dropout: float
    learning_rate: float
    batch_size: int
    max_epochs: int
    # early stopping: epochs without a better validation loss before training stops
    patience: int
    # cnn: the convolutions' widths (`units` filters each); transformer: attention heads and
    # encoder blocks (`units`: the feed-forward width)
    kernel_sizes: tuple[int, ...] = ()
    heads: int = 0
    blocks: int = 0
    # the embedding sized from the data: `num_words` is a cap, cut to the tokens training
    # found (`Tokenizer.sized`); the seed keeps its fixed 1000 rows
    sized_vocabulary: bool = True
    # a TF-IDF linear model over the same ids beside the network (models.TfIdfLinear): fitted
    # first as logistic regression and frozen, the network adds what it misses (wide & deep)
    linear: bool = False

    def with_epochs(self, epochs: int | None) -> Preset:
        return self if epochs is None else replace(self, max_epochs=epochs)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tokenizer"] = self.tokenizer.to_dict()
        return data


# The seed notebook, exactly: Keras Tokenizer(num_words=1000, oov_token) + pad_sequences(maxlen=100)
# with Keras' defaults (pre-padding, pre-truncation), Embedding(1000, 16) -> LSTM(32) -> Dense,
# Adam with its default learning rate, 10 epochs, batch 32. Only early stopping is added.
SEED = Preset(
    name="seed",
    tokenizer=TokenizerSpec(num_words=1000, max_length=100, padding="pre", truncating="pre"),
    architecture="lstm",
    embedding_dim=16,
    units=32,
    dropout=0.0,
    learning_rate=1e-3,
    batch_size=32,
    max_epochs=10,
    patience=3,
    sized_vocabulary=False,
)

# Wide and deep, fastText-style: each word is read with its character 3- and 4-grams
# (subwords), so a word never seen in training still shares pieces with words that were; a
# TF-IDF logistic regression over those ids (fitted first, its C chosen on validation, frozen)
# plus the mean of masked token embeddings -> hidden layer -> a correction to its logits.
# Together they put it at or above TF-IDF + logistic regression on the words on every bundled
# dataset, +1.6 points on average over ten seeds (bench/accuracy.py; README). It trains in
# seconds on 2 cores. A long max_length pays off (reviews run to
# hundreds of tokens) and costs little, because the model is a bag of embeddings, not a
# recurrence; masking makes the padding side irrelevant.
DEFAULT = Preset(
    name="default",
    tokenizer=TokenizerSpec(
        num_words=20000, max_length=512, padding="post", truncating="post", subword_ngrams=(3, 4)
    ),
    linear=True,
    architecture="mean_embedding",
    embedding_dim=64,
    units=64,
    dropout=0.3,
    learning_rate=1e-3,
    batch_size=32,
    max_epochs=50,
    patience=3,
)

# A text CNN (Kim 2014): convolutions of widths 2, 3 and 4 over the embeddings, each max-pooled
# over the real tokens only (the padding's embeddings are zeroed, so a shorter input is the
# same model: it gets the masked buckets), concatenated, dropout, head.
CNN = Preset(
    name="cnn",
    tokenizer=TokenizerSpec(num_words=20000, max_length=256, padding="post", truncating="post"),
    architecture="cnn",
    embedding_dim=64,
    units=64,
    dropout=0.4,
    learning_rate=1e-3,
    batch_size=32,
    max_epochs=30,
    patience=3,
    kernel_sizes=(2, 3, 4),
)

# A masked bidirectional LSTM: reads the text both ways, skips the padding.
BILSTM = Preset(
    name="bilstm",
    tokenizer=TokenizerSpec(num_words=20000, max_length=128, padding="post", truncating="post"),
    architecture="bilstm",
    embedding_dim=64,
    units=32,
    dropout=0.3,
    learning_rate=1e-3,
    batch_size=32,
    max_epochs=20,
    patience=3,
)

# A small encoder: token + learned position embeddings, two blocks of 4-head self-attention
# (padding keys masked) and a feed-forward layer with residuals and layer normalisation, then
# the masked mean of the tokens. Attention to real tokens only makes a shorter input the same
# model (masked buckets).
TRANSFORMER = Preset(
    name="transformer",
    tokenizer=TokenizerSpec(num_words=20000, max_length=128, padding="post", truncating="post"),
    architecture="transformer",
    embedding_dim=64,
    units=128,
    dropout=0.2,
    learning_rate=5e-4,
    batch_size=32,
    max_epochs=30,
    patience=3,
    heads=4,
    blocks=2,
)

PRESETS = {preset.name: preset for preset in (DEFAULT, SEED, CNN, BILSTM, TRANSFORMER)}
# `--preset auto` tries these, in this order (cheapest first), within its time budget.
AUTO_CANDIDATES = ("default", "cnn", "transformer", "bilstm")
