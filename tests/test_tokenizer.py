"""The tokenizer shared by training and serving."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maas.core.tokenizer import OOV_ID, PAD_ID, Tokenizer, TokenizerSpec, kept_tokens, tokens

texts = st.lists(st.text(max_size=200), max_size=20)


# Few distinct words, so their counts tie and the cap (2 kept of 6) cuts through ties: a
# tokenizer that broke ties by first appearance would depend on the order of the rows.
words = st.sampled_from(["alpha", "beta", "gamma", "delta", "好", "很好"])
corpora = st.lists(st.lists(words, max_size=8).map(" ".join), min_size=1, max_size=20)


@given(corpora, st.randoms(use_true_random=False))
def test_fit_is_independent_of_row_order(corpus: list[str], random: Any) -> None:
    spec = TokenizerSpec(num_words=4, max_length=10)
    shuffled = list(corpus)
    random.shuffle(shuffled)
    assert Tokenizer.fit(shuffled, spec) == Tokenizer.fit(corpus, spec)


@given(texts, st.text(max_size=500))
def test_encoding_is_stable_through_json(corpus: list[str], text: str) -> None:
    tokenizer = Tokenizer.fit(corpus, TokenizerSpec(num_words=30, max_length=16))
    restored = Tokenizer.from_json(tokenizer.to_json())
    assert np.array_equal(restored.encode([text]), tokenizer.encode([text]))


@given(
    st.text(),
    st.integers(1, 64),
    st.sampled_from(["pre", "post"]),
    st.sampled_from(["pre", "post"]),
)
def test_any_unicode_text_encodes_to_the_fixed_shape(
    text: str, length: int, padding: str, truncating: str
) -> None:
    spec = TokenizerSpec(num_words=20, max_length=length, padding=padding, truncating=truncating)  # type: ignore[arg-type]
    tokenizer = Tokenizer.fit([text], spec)
    ids = tokenizer.encode([text, ""])
    assert ids.shape == (2, length) and ids.dtype == np.int32
    assert ids.min() >= 0 and ids.max() < spec.num_words
    assert not ids[1].any(), "an empty text is all padding"


def test_vocabulary_cap_and_oov_follow_the_seed() -> None:
    corpus = ["a a a b b c", "a b d"]
    tokenizer = Tokenizer.fit(corpus, TokenizerSpec(num_words=4, max_length=5))
    # 0 = padding, 1 = OOV, then by frequency: a (4), b (3); c and d fall outside num_words=4
    assert tokenizer.vocabulary == ["a", "b"]
    assert tokenizer.encode(["a b c d"]).tolist() == [[PAD_ID, 2, 3, OOV_ID, OOV_ID]]


def test_padding_and_truncating_sides() -> None:
    corpus = ["one two three four five"]
    pre = Tokenizer.fit(corpus, TokenizerSpec(num_words=10, max_length=3))
    post = Tokenizer.fit(
        corpus, TokenizerSpec(num_words=10, max_length=3, padding="post", truncating="post")
    )
    ids = {word: pre.to_ids(word)[0] for word in corpus[0].split()}
    assert pre.encode(["one two three four five"]).tolist() == [
        [ids["three"], ids["four"], ids["five"]]
    ]
    assert post.encode(["one two three four five"]).tolist() == [
        [ids["one"], ids["two"], ids["three"]]
    ]
    assert pre.encode(["one"]).tolist() == [[0, 0, ids["one"]]]
    assert post.encode(["one"]).tolist() == [[ids["one"], 0, 0]]


def test_chinese_becomes_character_unigrams_and_bigrams() -> None:
    tokenizer = Tokenizer.fit([], TokenizerSpec())
    assert tokenizer.tokenize("质量很好") == ["质", "质量", "量", "量很", "很", "很好", "好"]
    # Japanese kana and kanji, mixed with Latin words and digits, punctuation dropped
    assert tokenizer.tokenize("iPhone 15が好き！") == [
        "iphone",
        "15",
        "が",
        "が好",
        "好",
        "好き",
        "き",
    ]


def test_subwords_follow_each_word_and_never_equal_one() -> None:
    spec = TokenizerSpec(subword_ngrams=(3, 4))
    assert tokens("Gzip 好", spec) == [
        "gzip",
        *["#<gz", "#<gzi", "#gzi", "#gzip", "#zip", "#zip>", "#ip>"],  # n-grams of <gzip>
        "好",  # scripts without spaces keep their own n-grams
    ]
    assert tokens("a", spec) == ["a"]  # "<a>" whole would only repeat the word
    assert tokens("ab", TokenizerSpec(subword_ngrams=(4,))) == ["ab"]
    words = {t for t in tokens("zip gzip", spec) if not t.startswith("#")}
    assert words == {"zip", "gzip"}  # "#zip" (a piece of gzip) is not the word "zip"
    assert spec.words_only == TokenizerSpec()
    assert TokenizerSpec.from_dict(spec.to_dict()) == spec
    assert TokenizerSpec.from_dict(TokenizerSpec().to_dict() | {"subword_ngrams": []}).words_only
    legacy = TokenizerSpec().to_dict()
    del legacy["subword_ngrams"]  # a tokenizer.json written before subwords existed
    assert TokenizerSpec.from_dict(legacy) == TokenizerSpec()


def test_unicode_normalisation_and_case_folding() -> None:
    tokenizer = Tokenizer.fit([], TokenizerSpec())
    # full-width Latin (NFKC), German sharp s (casefold), combining accent kept inside the word
    assert tokenizer.tokenize("ＨＥＬＬＯ Straße cafe\u0301") == ["hello", "strasse", "café"]
    assert tokenizer.tokenize("नमस्ते दुनिया") == ["नमस्ते", "दुनिया"]
    assert tokenizer.tokenize("") == []
    assert tokenizer.tokenize("!!! ... \t\n") == []


@settings(max_examples=5, deadline=None)
@given(st.sampled_from(["好", "good ", "ab,"]))
def test_huge_input_is_truncated_not_exploded(unit: str) -> None:
    huge = unit * 200_000
    tokenizer = Tokenizer.fit([unit * 3], TokenizerSpec(num_words=100, max_length=100))
    ids = tokenizer.encode([huge])
    assert ids.shape == (1, 100)
    assert (ids > 0).all()


def test_invalid_specs_are_refused() -> None:
    with pytest.raises(ValueError):
        TokenizerSpec(num_words=1)
    with pytest.raises(ValueError):
        TokenizerSpec(max_length=0)
    with pytest.raises(ValueError):
        TokenizerSpec(padding="middle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="subword"):
        TokenizerSpec(subword_ngrams=(1, 3))
    with pytest.raises(ValueError, match="format"):
        Tokenizer.from_json('{"format": "keras"}')


# Characters that make a cut in the middle of a text dangerous: kana and a combining voicing
# mark that composes with the kana before it, a Latin letter and a combining accent, Hangul
# jamo that compose into a syllable, characters that NFKC expands (㌀ -> アパート, one ligature
# -> 18 characters with spaces), ß (case-folds to ss), full-width punctuation and spaces.
hazards = st.sampled_from(
    [*"ab 中文かがé，.", "\u3099", "\u0301", "\u1100", "\u1161", "\u11a8", "가", "\u3300",
     "\ufdfa", "ß", "\u00a0", "\u3000", "xyz ", "质量很好"]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    st.lists(hazards, max_size=60).map("".join),
    st.integers(1, 30),
    st.sampled_from(["pre", "post"]),
    st.sampled_from([(1, 2), (1,), (2, 3)]),
    st.integers(1, 16),
    st.sampled_from([(), (3, 4), (2,)]),
)
def test_kept_tokens_are_exactly_the_kept_part_of_all_tokens(
    text: str, limit: int, side: str, ngrams: tuple[int, ...], window: int, subwords: Any
) -> None:
    """Tokenizing only a prefix (or suffix) that grows until it is enough gives exactly the
    tokens a model keeps of the whole text, whatever the cut falls on."""
    spec = TokenizerSpec(
        num_words=50,
        max_length=limit,
        truncating=side,  # type: ignore[arg-type]
        cjk_ngrams=ngrams,
        subword_ngrams=subwords,
    )
    everything = tokens(text, spec)
    kept = everything[:limit] if side == "post" else everything[-limit:]
    assert kept_tokens(text, spec, limit, first_window=window) == kept


def test_a_text_that_expands_is_tokenized_no_further_than_the_model_reads() -> None:
    """10,000 square katakana signs hold 80,000 units; the default preset reads 512."""
    spec = TokenizerSpec(num_words=100, max_length=512, truncating="post")
    text = "\u3300" * 10_000
    calls: list[int] = []
    import maas.core.tokenizer as module

    real = module._normalized

    def counting(piece: str, spec: TokenizerSpec) -> str:
        calls.append(len(piece))
        return real(piece, spec)

    setattr(module, "_normalized", counting)  # noqa: B010
    try:
        assert len(kept_tokens(text, spec, 512)) == 512
    finally:
        setattr(module, "_normalized", real)  # noqa: B010
    assert sum(calls) <= 1024, f"read {sum(calls)} of {len(text)} characters"
