"""`maas predict` and `maas evaluate`: a published model, through the serving code path."""

from __future__ import annotations

import argparse
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
from maas.core.limits import MAX_TEXT_CHARS, check_text
from maas.errors import BadData, InvalidInput

if TYPE_CHECKING:
    from maas.core.classifier import Classifier


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
    predict.set_defaults(func=run_predict)

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
    classifier = open_classifier(args.model, args.store)
    for text, prediction in zip(texts, classifier.predict(texts), strict=True):
        print_json(
            {"model": {"name": classifier.name, "version": classifier.version}, "text": text}
            | prediction.to_dict()
        )
    return 0


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
        print(f"accuracy {report['accuracy']:.4f}  macro-F1 {report['macro_f1']:.4f}")
        for label, row in report["per_class"].items():
            print(
                f"  {label:<20} precision {row['precision']:.3f} recall {row['recall']:.3f} "
                f"f1 {row['f1']:.3f} support {row['support']}"
            )
    return 0
