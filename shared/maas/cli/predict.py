"""`maas predict` and `maas evaluate`: a published model, through the serving code path."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maas.cli.common import (
    MODEL_HELP,
    STORE_HELP,
    add_file_options,
    command,
    file_options,
    open_store,
    print_json,
)
from maas.core.explain import MIN_MAX_INVOKES, TokenContribution, character_weights
from maas.core.limits import EXPLAIN_MAX_INVOKES, MAX_TEXT_CHARS, check_text
from maas.errors import BadData, InvalidInput

if TYPE_CHECKING:
    from maas.core.classifier import Classifier, Prediction


def add_parsers(commands: Any) -> None:
    predict = command(
        commands,
        "predict",
        "classify texts (JSON lines on stdout)",
        "Classify texts with a published model, through the code the functions run; one "
        "JSON line per text on stdout.",
    )
    predict.add_argument("--store", metavar="URI", help=STORE_HELP)
    predict.add_argument("--model", required=True, help=MODEL_HELP)
    predict.add_argument(
        "text", nargs="*", metavar="TEXT", help="texts, or '-' to read one per line from stdin"
    )
    add_explain_options(predict)
    predict.set_defaults(func=run_predict, explain=False)

    explain = command(
        commands,
        "explain",
        "which words made each decision (maas predict --explain)",
        "Classify texts and show which tokens made each decision: every token's contribution "
        "to the predicted label's probability, by leaving it out (leave-one-out). On a "
        "terminal, the texts in colour (green: for the label, red: against); else, or with "
        "--json, one JSON line per text.",
    )
    explain.add_argument("--store", metavar="URI", help=STORE_HELP)
    explain.add_argument("--model", required=True, help=MODEL_HELP)
    explain.add_argument(
        "text", nargs="*", metavar="TEXT", help="texts, or '-' to read one per line from stdin"
    )
    add_explain_options(explain, always=True)
    explain.set_defaults(func=run_predict, explain=True)

    evaluate = command(
        commands, "evaluate", "accuracy and macro-F1 of a published model on labelled data"
    )
    evaluate.add_argument("--store", metavar="URI", help=STORE_HELP)
    evaluate.add_argument("--model", required=True, help=MODEL_HELP)
    evaluate.add_argument("data", type=Path, metavar="DATA", help="CSV, TSV, JSONL or JSON")
    evaluate.add_argument(
        "--text-column", metavar="COLUMN", default="text", help="the texts' column or field"
    )
    evaluate.add_argument(
        "--label-column", metavar="COLUMN", default="label", help="the labels' column or field"
    )
    add_file_options(evaluate)
    evaluate.add_argument("--json", action="store_true", help="one JSON object on stdout")
    evaluate.set_defaults(func=run_evaluate)


def add_explain_options(parser: argparse.ArgumentParser, always: bool = False) -> None:
    if not always:
        parser.add_argument(
            "--explain",
            action="store_true",
            help="also show which tokens made each decision (as `maas explain`)",
        )
    parser.add_argument(
        "--max-invokes",
        type=int,
        default=EXPLAIN_MAX_INVOKES,
        metavar="N",
        help="model invokes one explained text may cost; longer texts are explained by "
        "groups of tokens",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="JSON lines even on a terminal (what is printed when stdout is not a terminal)",
    )


def open_classifier(model: str, store: str | None) -> Classifier:
    """The classifier for a reference, fetched from the store into the local cache."""
    from maas.client.settings import ClientSettings

    cache = ClientSettings.from_env().cache_dir
    return open_store(store).fetch(model, cache).open()


def run_predict(args: argparse.Namespace) -> int:
    texts = list(args.text)
    if texts == ["-"]:
        texts = [line.rstrip("\n") for line in sys.stdin]
    if not texts:
        raise InvalidInput(
            "no texts to classify: pass them as arguments, or '-' to read lines from stdin"
        )
    for number, text in enumerate(texts, 1):  # the rule HTTP and the queue apply
        if problem := check_text(text, MAX_TEXT_CHARS):
            raise InvalidInput(f"text {number} {problem.message}", code=problem.code)
    if args.max_invokes < MIN_MAX_INVOKES:
        raise InvalidInput(f"--max-invokes must be at least {MIN_MAX_INVOKES}")
    classifier = open_classifier(args.model, args.store)
    predictions = classifier.predict(texts, explain=args.explain, max_invokes=args.max_invokes)
    readable = args.explain and not args.json and sys.stdout.isatty()
    for text, prediction in zip(texts, predictions, strict=True):
        if readable and prediction.explanation:
            print(explained_view(text, prediction, classifier, colour=use_colour()))
            continue
        print_json(
            {"model": {"name": classifier.name, "version": classifier.version}, "text": text}
            | prediction.to_dict()
        )
    return 0


def use_colour() -> bool:
    """Colour on a terminal unless NO_COLOR is set (https://no-color.org)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


_FOR, _AGAINST = "32", "31"  # green, red
MOST = 5  # tokens listed on each side


def explained_view(text: str, prediction: Prediction, classifier: Classifier, colour: bool) -> str:
    """A prediction and its explanation for people: the text with each character coloured by
    its share of the contributions (bold: among the strongest), the tokens that count most
    for and against the label, and the totals."""
    explanation = prediction.explanation
    assert explanation is not None
    weights = character_weights(len(text), explanation.tokens)
    peak = max((abs(w) for w in weights), default=0.0) or 1.0

    def paint(piece: str, weight: float) -> str:
        strength = abs(weight) / peak
        if not colour or strength < 0.15:
            return piece
        code = _FOR if weight > 0 else _AGAINST
        return f"\x1b[{'1;' if strength >= 0.5 else ''}{code}m{piece}\x1b[0m"

    body = "".join(paint(char, weight) for char, weight in zip(text, weights, strict=True))
    ranked = sorted(explanation.tokens, key=lambda t: t.contribution, reverse=True)

    def listed(tokens: list[TokenContribution]) -> str:
        return "  ".join(f"{text[t.start : t.end]} {t.contribution:+.3f}" for t in tokens) or "-"

    supporting = [t for t in ranked if t.contribution > 0][:MOST]
    opposing = [t for t in reversed(ranked) if t.contribution < 0][:MOST]
    grouping = (
        f", groups of {explanation.tokens_per_group} tokens"
        if explanation.tokens_per_group > 1
        else ""
    )
    unread = (
        f"; {explanation.unread_tokens} tokens past what the model reads"
        if explanation.unread_tokens
        else ""
    )
    return "\n".join(
        [
            f"{prediction.label} {prediction.score * 100:.1f} %  "
            f"({classifier.name}:{classifier.version})",
            f"  {body}",
            f"  for {prediction.label}: {listed(supporting)}",
            f"  against: {listed(opposing)}",
            f"  sum of contributions {explanation.total:+.3f}; with no token at all "
            f"{explanation.without_tokens:.3f} ({explanation.method}, "
            f"{explanation.invokes} invokes{grouping}){unread}",
        ]
    )


def run_evaluate(args: argparse.Namespace) -> int:
    from maas.client.data import read_labelled
    from maas.core.metrics import classification_report

    dataset = read_labelled(args.data, args.text_column, args.label_column, file_options(args))
    classifier = open_classifier(args.model, args.store)
    unknown = sorted(set(dataset.labels) - set(classifier.labels))
    if unknown:
        raise BadData(
            f"{args.data}: labels {', '.join(map(repr, unknown))} are not among the model's "
            f"({', '.join(classifier.labels)})"
        )
    index = {label: i for i, label in enumerate(classifier.labels)}
    predicted = classifier.probabilities(dataset.texts).argmax(axis=1)
    report = classification_report(
        [index[label] for label in dataset.labels], predicted, classifier.labels
    )
    report["model"] = {"name": classifier.name, "version": classifier.version}
    if args.json:
        print_json(report)
    else:
        print(f"{classifier.name}:{classifier.version} on {args.data}: n={report['n']}")
        low, high = report["accuracy_interval"]
        print(
            f"accuracy {report['accuracy']:.4f} (95 % interval {low:.4f}-{high:.4f})  "
            f"macro-F1 {report['macro_f1']:.4f}"
        )
        for label, row in report["per_class"].items():
            print(
                f"  {label:<20} precision {row['precision']:.3f} recall {row['recall']:.3f} "
                f"f1 {row['f1']:.3f} support {row['support']}"
            )
    return 0
