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
    "features": "tf-idf over maas tokenizer tokens (whole vocabulary, sublinear tf)",
    "model": "scikit-learn LogisticRegression (C=1.0, lbfgs)",
}


Array = npt.NDArray[Any]


def _tokens(spec: TokenizerSpec, text: str) -> list[str]:
    return list(iter_tokens(text, spec))


def predict(
    spec: TokenizerSpec,
    train_texts: Sequence[str],
    y_train: Array,
    test_texts: Sequence[str],
    seed: int,
) -> Array:
    """Class ids for `test_texts`. Same tokens as the model (the tokenizer spec decides how
    text splits), but no vocabulary cap and no length limit: the baseline sees everything."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(analyzer=partial(_tokens, spec), sublinear_tf=True)
    classifier = LogisticRegression(C=1.0, max_iter=2000, random_state=seed)
    classifier.fit(vectorizer.fit_transform(train_texts), y_train)
    predicted: Any = classifier.predict(vectorizer.transform(test_texts))
    return np.asarray(predicted, dtype=np.int64)
