"""Text -> token ids. One implementation, used by training and by serving (pure Python + numpy).

Semantics follow the seed's Keras `Tokenizer` + `pad_sequences` where it matters for accuracy
and compatibility: index 0 is padding, index 1 is the OOV token, words are indexed by
frequency and only the `num_words - 1` most frequent indices are kept. Splitting is Unicode
aware instead of "split on spaces": text is NFKC-normalised and case-folded, words are runs of
letters and digits, and scripts written without spaces (Chinese, Japanese, Thai, ...) become
overlapping character unigrams and bigrams, so a Chinese sentence yields meaningful units
rather than one token.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from itertools import repeat
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

FORMAT = "maas.tokenizer/1"
PAD_ID = 0
OOV_ID = 1

# Scripts written without spaces between words: Han (with extensions and compatibility
# ideographs), Hiragana, Katakana, the iteration mark, Thai, Lao, Khmer and Myanmar.
_NO_SPACE = (
    "\u3005\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\U00020000-\U0002ebef\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff"
)
# Combining marks that Python's `\w` does not count as word characters but that belong inside
# words (Latin diacritics left after NFKC, Cyrillic, Hebrew and Arabic marks, Indic scripts).
_WORD_MARKS = "\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0900-\u0dff"
_TOKEN_RE = re.compile(rf"([{_NO_SPACE}]+)|((?:[^\W_{_NO_SPACE}]|[{_WORD_MARKS}])+)")

Side = Literal["pre", "post"]


@dataclass(frozen=True)
class TokenizerSpec:
    """Everything that decides which ids a text becomes; stored in the artifact."""

    num_words: int = 1000
    max_length: int = 100
    padding: Side = "pre"
    truncating: Side = "pre"
    oov_token: str = "<OOV>"
    lowercase: bool = True
    # n-gram sizes emitted for runs of characters of scripts written without spaces
    cjk_ngrams: tuple[int, ...] = (1, 2)
    # character n-gram sizes emitted after each word, fastText-style: the n-grams of "<word>"
    # (so a word's start and end are n-grams of their own), each led by SUBWORD_MARK so none
    # can equal a word. () emits words only. A word never seen in training still shares its
    # pieces with words that were (`compresses`: `#<co`, `#com`, `#omp`, ...).
    subword_ngrams: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.num_words < 2:
            raise ValueError("num_words must be at least 2 (padding and OOV)")
        if self.max_length < 1:
            raise ValueError("max_length must be positive")
        if self.padding not in ("pre", "post") or self.truncating not in ("pre", "post"):
            raise ValueError("padding and truncating must be 'pre' or 'post'")
        if not self.cjk_ngrams or any(n < 1 for n in self.cjk_ngrams):
            raise ValueError("cjk_ngrams must be positive sizes")
        if any(n < 2 for n in self.subword_ngrams):
            raise ValueError("subword_ngrams must be sizes of at least 2")

    @property
    def words_only(self) -> TokenizerSpec:
        """The same spec without subwords: the tokens the classic baseline is fitted on."""
        return replace(self, subword_ngrams=())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cjk_ngrams"] = list(self.cjk_ngrams)
        data["subword_ngrams"] = list(self.subword_ngrams)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenizerSpec:
        data = dict(data)
        data["cjk_ngrams"] = tuple(data.get("cjk_ngrams", (1, 2)))
        data["subword_ngrams"] = tuple(data.get("subword_ngrams", ()))
        return cls(**data)


def _no_space_units(run: str, ngrams: Sequence[int]) -> list[str]:
    """The n-grams of a run of a script written without spaces, interleaved by position
    (c0, c0c1, c1, c1c2, ...) so the order stays meaningful for sequence models."""
    if ngrams == (1, 2):  # the default, built by C-level slicing instead of a Python loop
        if len(run) == 1:
            return [run]
        units: list[str] = [run] * (2 * len(run) - 1)
        units[0::2] = run
        units[1::2] = map(str.__add__, run[:-1], run[1:])
        return units
    return [run[i : i + n] for i in range(len(run)) for n in ngrams if i + n <= len(run)]


SUBWORD_MARK = "#"  # a word is a run of letters and digits: it never holds this


@functools.lru_cache(maxsize=65536)
def _subwords(word: str, sizes: tuple[int, ...]) -> tuple[str, ...]:
    """The marked character n-grams of "<word>" (in order of position, then size), without
    "<word>" itself."""
    framed = f"<{word}>"
    return tuple(
        SUBWORD_MARK + framed[i : i + n]
        for i in range(len(framed))
        for n in sizes
        if i + n <= len(framed) and n < len(framed)
    )


def _word_units(word: str, spec: TokenizerSpec) -> Sequence[str]:
    """A word's tokens: the word, then its subwords where the spec asks for them."""
    if not spec.subword_ngrams:
        return (word,)
    return (word, *_subwords(word, spec.subword_ngrams))


def _normalized(text: str, spec: TokenizerSpec) -> str:
    text = unicodedata.normalize("NFKC", text)
    return text.casefold() if spec.lowercase else text


def tokens(text: str, spec: TokenizerSpec) -> list[str]:
    """The tokens of `text`, in order."""
    found: list[str] = []
    ngrams = spec.cjk_ngrams
    for run, word in _TOKEN_RE.findall(_normalized(text, spec)):
        if word:
            found += _word_units(word, spec)
        else:
            found += _no_space_units(run, ngrams)
    return found


# How much of a long text `kept_tokens` reads first, per kept token; it reads four times more
# each round until the kept tokens are known. Real text needs one or two rounds.
FIRST_WINDOW_PER_TOKEN = 2
MIN_FIRST_WINDOW = 64


def kept_tokens(
    text: str, spec: TokenizerSpec, limit: int, *, first_window: int | None = None
) -> list[str]:
    """`tokens(text)` truncated to `limit` tokens on the side the spec keeps - computed from
    only as much of the text as those tokens need.

    Normalization can multiply a text (one character of NFKC can become 18) and scripts
    without spaces give two units per character, so a 10,000-character text can hold 80,000
    tokens, of which a model reads 512. Here a prefix (or suffix) of the text is tokenized,
    growing, until it holds `limit` tokens that the rest of the text cannot change: only the
    run of letters at the cut can continue past it (a word is dropped whole, a run of a
    script without spaces loses its last two units, which the next character or a combining
    mark could still change). The result is always the same as tokenizing everything."""
    keep_head = spec.truncating == "post"
    size = first_window or max(MIN_FIRST_WINDOW, FIRST_WINDOW_PER_TOKEN * limit)
    while size < len(text):
        if keep_head:
            exact = _prefix_tokens(text[:size], spec)
        else:
            start = len(text) - size
            while start < len(text) and unicodedata.combining(text[start]):
                start += 1  # a mark belongs to the character before it: never start on one
            exact = _suffix_tokens(text[start:], spec)
        if len(exact) >= limit:
            return exact[:limit] if keep_head else exact[len(exact) - limit :]
        size *= 4
    found = tokens(text, spec)
    if len(found) > limit:
        return found[:limit] if keep_head else found[len(found) - limit :]
    return found


def _prefix_tokens(piece: str, spec: TokenizerSpec) -> list[str]:
    """The tokens of a prefix of a text that are tokens of the whole text, in order."""
    normalized = _normalized(piece, spec)
    found: list[str] = []
    for match in _TOKEN_RE.finditer(normalized):
        run, word = match.groups()
        at_cut = match.end() == len(normalized)
        if word:
            if not at_cut:
                found += _word_units(word, spec)
        else:
            units = _no_space_units(run, spec.cjk_ngrams)
            found += units[:-2] if at_cut else units
    return found


def _suffix_tokens(piece: str, spec: TokenizerSpec) -> list[str]:
    """The tokens of a suffix of a text that are tokens of the whole text, in order."""
    normalized = _normalized(piece, spec)
    found: list[str] = []
    for match in _TOKEN_RE.finditer(normalized):
        run, word = match.groups()
        at_cut = match.start() == 0
        if word:
            if not at_cut:
                found += _word_units(word, spec)
        else:
            units = _no_space_units(run, spec.cjk_ngrams)
            found += units[2:] if at_cut else units
    return found


class TokenSpan(NamedTuple):
    """A token and where it came from: `text[start:end]` (code points of the original text,
    before normalization) is what became `token`."""

    token: str
    start: int
    end: int


def _clusters(text: str) -> Iterator[tuple[int, int]]:
    """A character with the combining marks after it: the pieces that normalization maps on
    their own (NFKC composes a letter with its marks, never across a new base character)."""
    start = 0
    for i in range(1, len(text) + 1):
        if i == len(text) or not unicodedata.combining(text[i]):
            yield start, i
            start = i


@functools.lru_cache(maxsize=8192)
def _piece(char: str, lowercase: bool) -> str:
    normalized = unicodedata.normalize("NFKC", char)
    return normalized.casefold() if lowercase else normalized


def _aligned(text: str, spec: TokenizerSpec) -> tuple[str, list[int], list[int]]:
    """The normalized text, and for each of its characters the span [start, end) of the
    original text it came from.

    Pieces are normalized one by one and their results concatenated. Where that is not the
    normalization of the whole text (rare: Hangul jamo compose across base characters), the
    pieces grow to runs between whitespace, then to the whole text - spans get coarser, never
    wrong."""
    whole = _normalized(text, spec)
    if text.isascii():  # NFKC leaves ASCII alone and case folding keeps its length
        return whole, list(range(len(text))), list(range(1, len(text) + 1))
    # character by character (cached): right whenever it gives the whole text's normalization
    parts = list(map(_piece, text, repeat(spec.lowercase)))
    if "".join(parts) == whole and len(whole) == len(text) and "" not in parts:
        return whole, list(range(len(text))), list(range(1, len(text) + 1))
    whitespace = [(m.start(), m.end()) for m in re.finditer(r"\s+|\S+", text)]
    for pieces in (_clusters(text), whitespace, [(0, len(text))]):
        starts: list[int] = []
        ends: list[int] = []
        joined: list[str] = []
        for a, b in pieces:
            part = _piece(text[a], spec.lowercase) if b - a == 1 else _normalized(text[a:b], spec)
            joined.append(part)
            starts += [a] * len(part)
            ends += [b] * len(part)
        if "".join(joined) == whole:
            return whole, starts, ends
    raise AssertionError("unreachable: the whole text is one piece")  # pragma: no cover


def token_spans(text: str, spec: TokenizerSpec) -> list[TokenSpan]:
    """`tokens(text)` with the span of the original text each came from, in the same order.
    An n-gram of a script without spaces spans its n characters (neighbouring n-grams
    overlap); a word spans the characters it was normalized from."""
    normalized, starts, ends = _aligned(text, spec)
    found: list[TokenSpan] = []
    ngrams = spec.cjk_ngrams
    for match in _TOKEN_RE.finditer(normalized):
        run, word = match.groups()
        at = match.start()
        if word:
            start, end = starts[at], ends[match.end() - 1]
            found += (TokenSpan(unit, start, end) for unit in _word_units(word, spec))
            continue
        size = len(run)
        if ngrams == (1, 2) and size > 1:  # the default, interleaved by slicing as in tokens()
            first, last = starts[at : at + size], ends[at : at + size]
            unit_starts, unit_ends = [0] * (2 * size - 1), [0] * (2 * size - 1)
            unit_starts[0::2], unit_starts[1::2] = first, first[:-1]
            unit_ends[0::2], unit_ends[1::2] = last, last[1:]
            found += map(TokenSpan, _no_space_units(run, ngrams), unit_starts, unit_ends)
            continue
        for i in range(size):
            for n in ngrams:
                if i + n <= size:
                    unit = run[i : i + n]
                    found.append(TokenSpan(unit, starts[at + i], ends[at + i + n - 1]))
    return found


def iter_tokens(text: str, spec: TokenizerSpec) -> Iterator[str]:
    """Yield the tokens of `text` in order (see `tokens`)."""
    return iter(tokens(text, spec))


@dataclass
class Tokenizer:
    spec: TokenizerSpec
    # Tokens in id order; token i has id i + 2 (0 is padding, 1 is OOV).
    vocabulary: list[str]
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.vocabulary) > self.spec.num_words - 2:
            raise ValueError("vocabulary is larger than num_words allows")
        self._index = {token: i + 2 for i, token in enumerate(self.vocabulary)}
        if len(self._index) != len(self.vocabulary):
            raise ValueError("vocabulary has duplicate tokens")

    # -- building -----------------------------------------------------------------------
    @classmethod
    def fit(cls, texts: Iterable[str], spec: TokenizerSpec | None = None) -> Tokenizer:
        """Index tokens by descending frequency (ties: by token, so the result never depends
        on the order of the texts) and keep the `num_words - 2` most frequent."""
        spec = spec or TokenizerSpec()
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(iter_tokens(text, spec))
        return cls.from_counts(counts, spec)

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], spec: TokenizerSpec) -> Tokenizer:
        """`fit` from token counts already made (e.g. while a large file was read once)."""
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return cls(spec, [token for token, _ in ranked[: spec.num_words - 2]])

    def sized(self) -> Tokenizer:
        """The same tokenizer with `num_words` cut to the vocabulary it holds: a model's
        embedding then has a row for every token it knows and none that never trains (the ids
        of every text stay the same)."""
        needed = max(2, len(self.vocabulary) + 2)
        if needed >= self.spec.num_words:
            return self
        return Tokenizer(replace(self.spec, num_words=needed), self.vocabulary)

    # -- encoding -----------------------------------------------------------------------
    def tokenize(self, text: str) -> list[str]:
        return tokens(text, self.spec)

    def token_spans(self, text: str) -> list[TokenSpan]:
        """Every token of `text` with the span of the original text it came from."""
        return token_spans(text, self.spec)

    def read_spans(self, text: str, limit: int) -> tuple[list[TokenSpan], int]:
        """The spans of the tokens a model of `limit` steps reads (`kept_tokens`), and how
        many tokens of the text it does not read - tokenizing with spans only as much of a
        long text as those tokens need (a growing prefix or suffix, as `kept_tokens` does;
        checked against `kept_tokens`, so the result is the same as for the whole text)."""
        kept = kept_tokens(text, self.spec, limit)
        unread = len(tokens(text, self.spec)) - len(kept) if len(kept) == limit else 0
        keep_head = self.spec.truncating == "post"
        size = max(MIN_FIRST_WINDOW, FIRST_WINDOW_PER_TOKEN * limit)
        while True:
            start = 0 if keep_head else max(0, len(text) - size)
            while 0 < start < len(text) and unicodedata.combining(text[start]):
                start += 1
            end = min(len(text), size) if keep_head else len(text)
            spans = token_spans(text[start:end], self.spec)
            spans = spans[:limit] if keep_head else spans[max(0, len(spans) - limit) :]
            if [span.token for span in spans] == kept or size >= len(text):
                break
            size *= 4
        if start:
            spans = [TokenSpan(s.token, s.start + start, s.end + start) for s in spans]
        return spans, unread

    def ids_of(self, found: Sequence[str]) -> list[int]:
        """The ids of tokens (OOV_ID for a token outside the vocabulary)."""
        return list(map(self._index.get, found, repeat(OOV_ID)))

    def to_ids(self, text: str) -> list[int]:
        """The ids of `text`, truncated to `max_length` on the configured side (and only as
        much of the text tokenized as that needs: `kept_tokens`)."""
        # dict.get(token, OOV_ID) for every token, looped in C
        return self.ids_of(kept_tokens(text, self.spec, self.spec.max_length))

    def encode(self, texts: Sequence[str], length: int | None = None) -> npt.NDArray[np.int32]:
        """A padded int32 matrix of shape (len(texts), length or max_length)."""
        width = length or self.spec.max_length
        out = np.zeros((len(texts), width), dtype=np.int32)
        keep_tail = self.spec.truncating == "pre"
        for row, text in enumerate(texts):
            ids = self.to_ids(text)
            ids = ids[-width:] if keep_tail else ids[:width]
            if not ids:
                continue
            if self.spec.padding == "pre":
                out[row, width - len(ids) :] = ids
            else:
                out[row, : len(ids)] = ids
        return out

    # -- persistence --------------------------------------------------------------------
    def to_json(self) -> str:
        doc = {"format": FORMAT, "spec": self.spec.to_dict(), "vocabulary": self.vocabulary}
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Tokenizer:
        doc = json.loads(text)
        if doc.get("format") != FORMAT:
            raise ValueError(f"not a maas tokenizer (format {doc.get('format')!r})")
        return cls(TokenizerSpec.from_dict(doc["spec"]), list(doc["vocabulary"]))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))
