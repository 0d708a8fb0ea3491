"""The bar the neural model must clear: TF-IDF + logistic regression over the same tokens."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from maas.core.tokenizer import TokenizerSpec, iter_tokens

# Recorded in the manifest so the number can be reproduced.
DESCRIPTION = {
    "features": "tf-idf over maas tokenizer word tokens, without subwords (whole vocabulary, "
    "sublinear tf)",
    "model": "scikit-learn LogisticRegression (C=1.0, lbfgs)",
}


Array = npt.NDArray[Any]


def _tokens(spec: TokenizerSpec, text: str) -> list[str]:
    return list(iter_tokens(text, spec))


def fit(spec: TokenizerSpec, train_texts: Sequence[str], y_train: Array, seed: int) -> Any:
    """The fitted baseline: a scikit-learn pipeline from texts to class probabilities. The
    classic one: the model's words (the tokenizer spec decides how text splits, Chinese
    characters and their bigrams included) without the character n-grams of words the model
    may add (`subword_ngrams`), and no vocabulary cap and no length limit: the baseline sees
    every word. (bench/peers.py serves it as a peer.)"""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    pipeline = make_pipeline(
        TfidfVectorizer(analyzer=partial(_tokens, spec.words_only), sublinear_tf=True),
        LogisticRegression(C=1.0, max_iter=2000, random_state=seed),
    )
    return pipeline.fit(list(train_texts), y_train)


def predict(
    spec: TokenizerSpec,
    train_texts: Sequence[str],
    y_train: Array,
    test_texts: Sequence[str],
    seed: int,
) -> Array:
    """Class ids for `test_texts`, from the baseline fitted on the training texts."""
    predicted: Any = fit(spec, train_texts, y_train, seed).predict(list(test_texts))
    return np.asarray(predicted, dtype=np.int64)
