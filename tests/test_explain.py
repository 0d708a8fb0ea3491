"""Explanations: leave-one-out token attributions, from the core to every place a prediction is.

The model is the session's real one (default preset, trained on real reviews); texts are real
reviews and, for the properties, anything hypothesis makes of them.
"""

from __future__ import annotations

import json
import math
import os
import pty
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import open_store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_http import assert_error, invoker, request, reviews

from maas.core.classifier import Classifier
from maas.core.explain import explain, groups, units
from maas.core.limits import MAX_EXPLAINED_TEXTS_PER_REQUEST
from maas.core.tokenizer import TokenizerSpec, token_spans, tokens
from maas.local.lambda_runtime import lambda_context, load_function

REPO = Path(__file__).resolve().parent.parent
MAAS = str(Path(sys.executable).with_name("maas"))

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

REAL = reviews("positive", 20, set()) + reviews("negative", 20, set())
# Texts as users send them: real reviews, cut, joined, and mixed with other scripts, marks,
# compatibility characters (NFKC changes them), emoji and whitespace.
PIECES = st.sampled_from(
    [
        *REAL[:10],
        "Hello, Wörld!",
        "e\u0301te\u0301",
        "ﬁne Straße ①",
        "𠀀𠀁 🙂",
        "\u1100\u1161\u11a8",
        "ＡＢＣ１２３",
        "  \t",
        "مرحبا",
        "नमस्ते",
    ]
)
TEXTS = st.lists(PIECES, min_size=1, max_size=4).map(" ".join) | st.text(max_size=60)


@pytest.fixture(scope="module")
def classifier(trained_model: Path) -> Classifier:
    return Classifier.open(trained_model)


# ----------------------------------------------------------------------------- the core
@given(text=TEXTS, subwords=st.sampled_from([(), (3, 4)]))
@settings(max_examples=300, deadline=None)
def test_token_spans_are_the_tokens_with_their_place_in_the_text(
    text: str, subwords: tuple[int, ...]
) -> None:
    spec = TokenizerSpec(subword_ngrams=subwords)
    spans = token_spans(text, spec)
    assert [span.token for span in spans] == tokens(text, spec)
    for span in spans:
        assert 0 <= span.start < span.end <= len(text)
        piece = unicodedata.normalize("NFKC", text[span.start : span.end]).casefold()
        # a subword spans its word: its characters (framed as <word>) are in the word
        assert span.token.lstrip("#").strip("<>") in piece or not text.isascii()


@given(text=TEXTS)
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_attributions_hold_their_properties(classifier: Classifier, text: str) -> None:
    if not tokens(text, classifier.tokenizer.spec):
        return
    first = classifier.explain(text)
    assert classifier.explain(text) == first  # deterministic
    prediction = classifier.predict([text])[0]
    assert first.label == prediction.label
    assert math.isclose(first.probability, prediction.score, abs_tol=1e-6)
    as_dict = first.to_dict()
    assert math.isclose(as_dict["sum"], sum(t.contribution for t in first.tokens), abs_tol=1e-5)
    spans, _ = classifier.tokenizer.read_spans(text, classifier.tokenizer.spec.max_length)
    heads = [spans[unit.start] for unit in units(spans)]  # a word stands for its subwords
    assert [(t.token, t.start, t.end) for t in first.tokens] == [tuple(s) for s in heads]
    for token in first.tokens:
        assert 0 <= token.start < token.end <= len(text)
    assert first.invokes <= 128


@pytest.mark.parametrize("text", ["好", "  好！ ", "recommend"])
def test_a_text_of_one_token_attributes_everything_to_it(classifier: Classifier, text: str) -> None:
    explanation = classifier.explain(text)
    (token,) = explanation.tokens
    assert token.contribution == pytest.approx(
        explanation.probability - explanation.without_tokens, abs=1e-7
    )
    assert text[token.start : token.end].strip() in (token.token, "好")


def test_a_word_and_its_subwords_are_left_out_together_and_named_as_the_word() -> None:
    spec = TokenizerSpec(num_words=100, max_length=100, subword_ngrams=(3, 4))
    text = "gzip compresses 质量"
    spans = token_spans(text, spec)
    assert len(spans) > 5  # the words' n-grams are read too
    ids = list(range(2, 2 + len(spans)))
    compresses = {ids[i] for i, span in enumerate(spans) if span.start == text.index("compresses")}
    assert len(compresses) == 1 + 19  # the word, 10 trigrams and 9 four-grams of <compresses>
    seen: list[list[int]] = []

    def read(kept: list[int]) -> Any:
        seen.append(kept)  # p(second label) grows with the ids read from 'compresses'
        share = len(compresses.intersection(kept)) / len(compresses)
        return np.array([1 - 0.4 * share, 0.4 * share], dtype=np.float32)

    explanation = explain(read, ["a", "b"], spans, ids, known=[True] * len(spans))
    assert [t.token for t in explanation.tokens] == ["gzip", "compresses", "质", "质量", "量"]
    assert [text[t.start : t.end] for t in explanation.tokens[:2]] == ["gzip", "compresses"]
    assert explanation.invokes == 2 + 5
    left_out = sorted(len(ids) - len(kept) for kept in seen[2:])
    assert left_out == [1, 1, 1, 8, 20]  # each CJK unit alone; each word with its n-grams
    assert explanation.label == "a"
    by_token = {t.token: t.contribution for t in explanation.tokens}
    assert by_token["compresses"] == pytest.approx(0.6 - 1.0)  # it alone moves the probability
    assert by_token["gzip"] == by_token["质"] == 0.0


def test_a_long_text_is_explained_in_groups_within_the_bound(classifier: Classifier) -> None:
    text = " ".join(REAL)  # well over max_length tokens for this model
    explanation = classifier.explain(text, max_invokes=20)
    assert explanation.invokes <= 20
    assert explanation.tokens_per_group > 1
    spans, unread = classifier.tokenizer.read_spans(text, classifier.tokenizer.spec.max_length)
    assert len(spans) == classifier.tokenizer.spec.max_length
    assert len(explanation.tokens) == len(units(spans))
    assert (
        explanation.unread_tokens
        == unread
        == len(tokens(text, classifier.tokenizer.spec)) - len(spans)
    )
    assert all(g.stop - g.start <= explanation.tokens_per_group for g in groups(512, 20))
    # every token of a group carries the same share
    shares = [t.contribution for t in explanation.tokens[: explanation.tokens_per_group]]
    assert max(shares) == pytest.approx(min(shares))


def test_the_words_it_names_are_the_ones_the_decision_rests_on(classifier: Classifier) -> None:
    """Comprehensiveness on real reviews, in small: deleting the top fifth of the tokens by
    attribution lowers the label's probability more than deleting the bottom fifth."""
    top: list[float] = []
    bottom: list[float] = []
    for text in REAL:
        explanation = classifier.explain(text)
        label = classifier.labels.index(explanation.label)
        spans, _ = classifier.tokenizer.read_spans(text, classifier.tokenizer.spec.max_length)
        ids = classifier.tokenizer.ids_of([span.token for span in spans])
        explained = units(spans)  # explanation.tokens[i] is explained[i]: a word and its subwords
        ranked = sorted(range(len(explained)), key=lambda i: -explanation.tokens[i].contribution)
        k = max(1, len(explained) // 5)
        for chosen, drops in ((set(ranked[:k]), top), (set(ranked[-k:]), bottom)):
            gone = {position for i in chosen for position in explained[i]}
            kept = [token for i, token in enumerate(ids) if i not in gone]
            drops.append(
                explanation.probability - float(classifier.probabilities_from_ids(kept)[label])
            )
    assert sum(top) > 3 * max(sum(bottom), 0.0) and sum(top) > 0


# ----------------------------------------------------------------------------------- HTTP
@pytest.fixture
def invoke(env: pytest.MonkeyPatch) -> Any:
    return invoker(load_function("http"))


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, trained_model: Path, tmp_path: Path) -> Any:
    store = tmp_path / "store"
    open_store(store).publish(trained_model, "reviews", alias="production")
    monkeypatch.setenv("MAAS_STORE", str(store))
    monkeypatch.setenv("MAAS_MODEL_NAME", "reviews")
    monkeypatch.setenv("MAAS_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("MAAS_MAX_EXPLAINED_TEXTS", "MAAS_EXPLAIN_MAX_INVOKES", "MAAS_MAX_TEXTS"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def predict(body: Any) -> dict[str, Any]:
    return request("POST", "/models/reviews/predict", body)


def test_http_explains_when_asked_and_only_then(invoke: Any) -> None:
    text = REAL[0]
    status, plain, _ = invoke(predict({"text": text}))
    assert status == 200 and "explanation" not in plain["predictions"][0]
    status, body, _ = invoke(predict({"text": text, "explain": True}))
    assert status == 200, body
    prediction = body["predictions"][0]
    assert {k: prediction[k] for k in ("label", "score", "scores")} == plain["predictions"][0]
    explanation = prediction["explanation"]
    assert explanation["method"] == "leave-one-out"
    assert explanation["label"] == prediction["label"]
    assert explanation["tokens"] and all(
        0 <= t["start"] < t["end"] <= len(text) for t in explanation["tokens"]
    )
    assert set(explanation["tokens"][0]) >= {"token", "start", "end", "contribution"}
    status, body, _ = invoke(predict({"text": text, "explain": False}))
    assert status == 200 and "explanation" not in body["predictions"][0]


def test_http_limits_explained_texts(invoke: Any, env: pytest.MonkeyPatch) -> None:
    texts = (REAL * 2)[: MAX_EXPLAINED_TEXTS_PER_REQUEST + 1]
    error = assert_error(
        invoke(predict({"texts": texts, "explain": True})), 422, "too_many_explained_texts"
    )
    assert error["details"]["limit"] == MAX_EXPLAINED_TEXTS_PER_REQUEST
    assert str(MAX_EXPLAINED_TEXTS_PER_REQUEST) in error["message"]
    status, body, _ = invoke(predict({"texts": texts}))  # without explain: fine
    assert status == 200 and len(body["predictions"]) == len(texts)
    env.setenv("MAAS_MAX_EXPLAINED_TEXTS", "2")
    env.setenv("MAAS_EXPLAIN_MAX_INVOKES", "5")
    invoke_small = invoker(load_function("http"))
    assert_error(
        invoke_small(predict({"texts": REAL[:3], "explain": True})), 422, "too_many_explained_texts"
    )
    status, body, _ = invoke_small(predict({"texts": REAL[:2], "explain": True}))
    assert status == 200 and all(p["explanation"]["invokes"] <= 5 for p in body["predictions"])


@pytest.mark.parametrize("value", ["true", 1, None, [True], {"on": True}])
def test_http_explain_must_be_a_boolean(invoke: Any, value: Any) -> None:
    error = assert_error(invoke(predict({"text": REAL[0], "explain": value})), 422, "wrong_type")
    assert "explain" in error["message"]


def test_openapi_documents_explain(invoke: Any) -> None:
    status, document, _ = invoke(request("GET", "/openapi.json"))
    assert status == 200
    schemas = document["components"]["schemas"]
    explain = schemas["PredictRequest"]["properties"]["explain"]
    assert (
        explain["type"] == "boolean"
        and str(MAX_EXPLAINED_TEXTS_PER_REQUEST) in explain["description"]
    )
    assert {"ExplanationOut", "TokenContributionOut"} <= set(schemas)
    status, info, _ = invoke(request("GET", "/models/reviews"))
    assert status == 200 and info["explain"] is True


# ---------------------------------------------------------------------------------- queue
def test_queue_messages_can_ask_for_explanations(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    results = tmp_path / "results"
    env.setenv("MAAS_RESULTS", str(results))
    queue = load_function("queue")
    records = [
        {
            "messageId": f"m{i}",
            "receiptHandle": "r",
            "body": json.dumps(body, ensure_ascii=False),
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
            "awsRegion": "us-east-1",
        }
        for i, body in enumerate(
            [
                {"id": "explained", "texts": REAL[:3], "explain": True},
                {"id": "plain", "texts": REAL[:3]},
                {"id": "too-many", "texts": REAL[:101] * 3, "explain": True},
            ]
        )
    ]
    response = queue.handler({"Records": records}, lambda_context())
    assert response["batchItemFailures"] == [{"itemIdentifier": "m2"}]
    explained = json.loads((results / "results" / "explained.json").read_text(encoding="utf-8"))
    plain = json.loads((results / "results" / "plain.json").read_text(encoding="utf-8"))
    assert all(p["explanation"]["tokens"] for p in explained["predictions"])
    assert all("explanation" not in p for p in plain["predictions"])
    failure = json.loads((results / "failures" / "too-many.json").read_text(encoding="utf-8"))
    assert failure["code"] == "too_many_explained_texts" and not failure["retryable"]


# ------------------------------------------------------------------------------------ CLI
def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MAAS, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def cli_store(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("explain-cli") / "store"
    open_store(store).publish(trained_model, "reviews", alias="production")
    return store


def test_cli_predict_explain_prints_json_when_piped(cli_store: Path) -> None:
    done = run("predict", "--store", str(cli_store), "--model", "reviews", "--explain", REAL[0])
    assert done.returncode == 0, done.stderr
    line = json.loads(done.stdout)
    assert line["text"] == REAL[0] and line["explanation"]["tokens"]
    same = run("explain", "--store", str(cli_store), "--model", "reviews", REAL[0])
    assert json.loads(same.stdout) == line


def terminal_run(argv: list[str], env: dict[str, str] | None = None) -> str:
    """What a command prints with its stdout on a terminal (a pty)."""
    terminal, side = pty.openpty()
    process = subprocess.Popen(
        argv, stdout=side, stderr=subprocess.PIPE, env={**os.environ, **(env or {})}
    )
    os.close(side)
    chunks = []
    while True:
        try:
            chunk = os.read(terminal, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(terminal)
    assert process.wait(timeout=120) == 0, process.stderr.read() if process.stderr else ""
    return b"".join(chunks).decode("utf-8")


def test_cli_explain_in_a_terminal_is_coloured_and_readable(cli_store: Path) -> None:
    text = "房间很干净，服务也很好，下次还会再来"
    output = terminal_run([MAAS, "explain", "--store", str(cli_store), "--model", "reviews", text])
    assert "\x1b[" in output  # colour
    plain = terminal_run(
        [MAAS, "explain", "--store", str(cli_store), "--model", "reviews", text],
        env={"NO_COLOR": "1"},
    )
    assert "\x1b[" not in plain and text in plain
    assert "leave-one-out" in plain and "against:" in plain and "%" in plain


def test_cli_refuses_too_few_invokes(cli_store: Path) -> None:
    done = run(
        "explain", "--store", str(cli_store), "--model", "reviews", "--max-invokes", "2", "好"
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "--max-invokes must be at least 3" in done.stderr
