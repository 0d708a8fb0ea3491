"""Which words made the decision: leave-one-out token attributions from the model alone.

The method (occlusion by deletion, "leave-one-out"): the model reads the text as it always
does (the same tokens, truncated to what it reads), then once more without each token. A
token's contribution is how much the predicted label's probability drops when the token is
taken out:

    contribution(t) = p(label | all tokens) - p(label | all tokens but t)

Positive: the token speaks for the label; negative: against it. It needs nothing but the
quantized TFLite model (no gradients, no TensorFlow), so it runs inside the Lambda functions.

Cost: one invoke per token read, plus two (the text as read, and no token at all, which is
reported as the model's prior). It is bounded by `max_invokes`: a text with more tokens than
that allows is explained in contiguous groups of tokens, each group left out together, and
every token of a group gets an equal share of the group's drop (`tokens_per_group` says so).
Tokens the model does not read (past its max_length) get no contribution and are counted in
`unread_tokens`.

Limits, stated so nobody over-reads the numbers: contributions are one token at a time, so
interactions are not split fairly (two words that each suffice alone both score low; their
sum is not p(text) - p(no tokens) in general - both numbers are reported, so the gap shows);
deleting a token changes the position of every later one, which an order-aware model (the
LSTM) also reads; an n-gram token of a script without spaces overlaps its neighbours, so a
character's weight is the sum of shares of the tokens that cover it (`character_weights`).

A word read with its subwords (`TokenizerSpec.subword_ngrams`) is one unit here: the word and
its character n-grams are left out together and reported as the word, with its span.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from maas.core.limits import EXPLAIN_MAX_INVOKES
from maas.core.tokenizer import SUBWORD_MARK, TokenSpan

METHOD = "leave-one-out"
DEFAULT_MAX_INVOKES = EXPLAIN_MAX_INVOKES
"""Invokes one explained text may cost, all included (its own, the empty text's, the groups')."""
MIN_MAX_INVOKES = 3  # the text, no tokens, and one group: below that nothing is explained

Read = Callable[[list[int]], npt.NDArray[np.float32]]
"""The model: token ids (at most what it reads) -> the probability of every label."""


@dataclass(frozen=True)
class TokenContribution:
    token: str
    start: int  # code points of the original text: text[start:end]
    end: int
    contribution: float
    known: bool = True  # False: not in the model's vocabulary (read as the OOV token)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "token": self.token,
            "start": self.start,
            "end": self.end,
            "contribution": round(self.contribution, 6),
        }
        if not self.known:
            out["known"] = False
        return out


@dataclass(frozen=True)
class Explanation:
    label: str
    probability: float  # p(label | the tokens the model read)
    without_tokens: float  # p(label | no token at all): the model's prior
    tokens: list[TokenContribution]
    invokes: int
    tokens_per_group: int = 1
    unread_tokens: int = 0
    method: str = field(default=METHOD)

    @property
    def total(self) -> float:
        """The sum of the contributions (of the leave-one-out drops)."""
        return math.fsum(t.contribution for t in self.tokens)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "label": self.label,
            "probability": round(self.probability, 6),
            "without_tokens": round(self.without_tokens, 6),
            "sum": round(self.total, 6),
            "tokens": [token.to_dict() for token in self.tokens],
            "invokes": self.invokes,
            "tokens_per_group": self.tokens_per_group,
            "unread_tokens": self.unread_tokens,
        }


def groups(count: int, max_invokes: int) -> list[range]:
    """Contiguous groups of `count` token positions, as many as `max_invokes` allows after
    the two fixed invokes, all of one size but the last."""
    if max_invokes < MIN_MAX_INVOKES:
        raise ValueError(f"max_invokes must be at least {MIN_MAX_INVOKES}")
    size = max(1, math.ceil(count / (max_invokes - 2)))
    return [range(start, min(start + size, count)) for start in range(0, count, size)]


def units(spans: Sequence[TokenSpan]) -> list[range]:
    """The positions explained together: a word with the subwords after it, or one token (a
    subword whose word was truncated away is a unit of its own)."""
    found: list[range] = []
    for position, span in enumerate(spans):
        if (
            found
            and span.token.startswith(SUBWORD_MARK)
            and span.start == spans[found[-1].start].start
        ):
            found[-1] = range(found[-1].start, position + 1)
        else:
            found.append(range(position, position + 1))
    return found


def explain(
    read: Read,
    labels: Sequence[str],
    spans: Sequence[TokenSpan],
    ids: Sequence[int],
    *,
    known: Sequence[bool],
    unread: int = 0,
    max_invokes: int = DEFAULT_MAX_INVOKES,
) -> Explanation:
    """Leave-one-out over `ids` (the ids the model reads, one per span in `spans`), a word
    and its subwords together."""
    if not (len(spans) == len(ids) == len(known)):
        raise ValueError("spans, ids and known must be aligned")
    ids = list(ids)
    full = read(ids)
    best = int(np.argmax(full))
    prior = float(read([])[best])
    explained = units(spans)
    contributions = [0.0] * len(explained)
    parts = groups(len(explained), max_invokes)
    for part in parts:
        start, stop = explained[part.start].start, explained[part.stop - 1].stop
        drop = float(full[best]) - float(read(ids[:start] + ids[stop:])[best])
        for unit in part:
            contributions[unit] = drop / len(part)
    heads = [spans[unit.start] for unit in explained]
    return Explanation(
        label=labels[best],
        probability=float(full[best]),
        without_tokens=prior,
        tokens=[
            TokenContribution(span.token, span.start, span.end, share, known[unit.start])
            for span, unit, share in zip(heads, explained, contributions, strict=True)
        ],
        invokes=2 + len(parts),
        tokens_per_group=len(parts[0]) if parts else 1,
        unread_tokens=unread,
    )


def character_weights(length: int, tokens: Sequence[TokenContribution]) -> list[float]:
    """Each character's share of the contributions: a token's contribution spread evenly over
    the characters it spans (overlapping n-grams add up). Sums to `Explanation.total`."""
    weights = [0.0] * length
    for token in tokens:
        width = token.end - token.start
        for i in range(token.start, token.end):
            weights[i] += token.contribution / width
    return weights
