"""The `maas` command line: train, publish, promote, predict, evaluate, demo, batch.

Every command that predicts goes through `maas.classifier.Classifier`, the code the Lambda
functions run. Errors end the process with a non-zero status and one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from maas.errors import MaasError

EXIT_ERROR = 1
EXIT_USAGE = 2


# ----------------------------------------------------------------------------- helpers
STORE_HELP = "a directory, file:// or s3://BUCKET/PREFIX (default: $MAAS_STORE, then .maas/store)"


def _training_python() -> str:
    """The interpreter of the training environment. TensorFlow and tflite-runtime cannot share
    numpy, so `maas train` runs the job in a separate environment (see README)."""
    configured = os.environ.get("MAAS_TRAIN_PYTHON")
    if configured:
        return configured
    sibling = Path(sys.prefix).parent / ".venv-train" / "bin" / "python"
    if sibling.is_file():
        return str(sibling)
    try:  # an environment that has TensorFlow itself (e.g. the GPU training container)
        import importlib.util

        if importlib.util.find_spec("tensorflow") is not None:
            return sys.executable
    except ValueError:
        pass
    raise MaasError(
        "no training environment: run `make install` (creates .venv-train) "
        "or set MAAS_TRAIN_PYTHON to a Python that has maas[train]"
    )


def _print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")


def _progress_bar(label: str, total: int) -> Callable[[int], None]:
    """A one-line progress bar on stderr (only when stderr is a terminal or forced)."""
    done = 0
    interactive = sys.stderr.isatty() or os.environ.get("MAAS_PROGRESS") == "1"

    def advance(amount: int) -> None:
        nonlocal done
        done += amount
        if not interactive or total <= 0:
            return
        filled = int(30 * min(done, total) / total)
        sys.stderr.write(
            f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {min(done, total)}/{total}"
        )
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return advance


# ---------------------------------------------------------------------------- commands
def cmd_train(args: argparse.Namespace) -> int:
    command = [_training_python(), "-m", "maas.training", str(args.data), "--out", str(args.out)]
    for flag in ("text_column", "label_column", "preset", "epochs", "seed"):
        value = getattr(args, flag)
        if value is not None:
            command += [f"--{flag.replace('_', '-')}", str(value)]
    if args.allow_quality_drop:
        command.append("--allow-quality-drop")
    # TensorFlow's C++ log (oneDNN notices, a harmless tf.data "E0000 NodeDef mentions attribute"
    # line) is noise for a person watching epochs; real failures surface as Python errors.
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", **os.environ}
    status = subprocess.run(command, check=False, env=env).returncode
    if status != 0:
        return status
    # The training environment checked the model with LiteRT; check it again with the runtime
    # the Lambda functions use before anyone publishes it.
    from maas.publishing import verify_artifact

    report = verify_artifact(args.out, allow_quality_drop=args.allow_quality_drop)
    print(
        f"verified with {report['runtime']}: golden examples within {report['max_abs_diff']:.1e}",
        file=sys.stderr,
    )
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from maas.publishing import verify_artifact
    from maas.store import ModelStore

    verify_artifact(args.dir, allow_quality_drop=args.allow_quality_drop)
    store = ModelStore.open(args.store)
    total = sum(f.stat().st_size for f in Path(args.dir).iterdir() if f.is_file())
    bar = _progress_bar(f"uploading to {store.uri}", total)
    version = store.publish(args.dir, args.name, alias=args.alias, progress=lambda _f, n: bar(n))
    print(version)
    print(
        f"published {args.name}:{version} to {store.uri}"
        + (f" as @{args.alias}" if args.alias else ""),
        file=sys.stderr,
    )
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from maas.store import ModelStore

    store = ModelStore.open(args.store)
    names = [args.name] if args.name else store.models()
    listing: list[dict[str, Any]] = []
    for name in names:
        versions = store.versions(name)
        if args.name and not versions:
            raise MaasError(f"no model named {name!r} in {store.uri}")
        aliases = store.aliases(name)
        entries = []
        for version in versions:
            manifest = store.manifest(name, version)
            quantized = manifest.get("metrics", {}).get("quantized", {})
            entries.append(
                {
                    "version": version,
                    "aliases": sorted(a for a, v in aliases.items() if v == version),
                    "labels": manifest["labels"],
                    "accuracy": quantized.get("accuracy"),
                    "published_at": manifest.get("published_at"),
                }
            )
        listing.append({"name": name, "versions": entries, "aliases": aliases})
    if args.json:
        _print_json({"store": store.uri, "models": listing})
        return 0
    if not listing:
        print(f"no models in {store.uri}")
    for model in listing:
        print(model["name"])
        for entry in model["versions"]:
            accuracy = "" if entry["accuracy"] is None else f"  accuracy {entry['accuracy']:.4f}"
            tags = "".join(f" @{a}" for a in entry["aliases"])
            print(f"  {entry['version']:>4}  {entry['published_at'] or ''}{accuracy}{tags}")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from maas.store import ModelStore

    store = ModelStore.open(args.store)
    store.promote(args.name, args.version, args.alias)
    print(f"{args.name}@{args.alias} -> {args.version}", file=sys.stderr)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from maas.classifier import Classifier

    texts = list(args.text)
    if texts == ["-"]:
        texts = [line.rstrip("\n") for line in sys.stdin]
    if not texts:
        raise MaasError(
            "no texts to classify: pass them as arguments, or '-' to read lines from stdin"
        )
    classifier = Classifier.from_store(args.model, args.store)
    for text, prediction in zip(texts, classifier.predict(texts), strict=True):
        _print_json(
            {"model": {"name": classifier.name, "version": classifier.version}, "text": text}
            | prediction.to_dict()
        )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from maas.classifier import Classifier
    from maas.data import read_labelled
    from maas.metrics import classification_report

    dataset = read_labelled(args.data, args.text_column, args.label_column)
    classifier = Classifier.from_store(args.model, args.store)
    unknown = sorted(set(dataset.labels) - set(classifier.labels))
    if unknown:
        raise MaasError(
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
        _print_json(report)
    else:
        print(f"{classifier.name}:{classifier.version} on {args.data}: n={report['n']}")
        print(f"accuracy {report['accuracy']:.4f}  macro-F1 {report['macro_f1']:.4f}")
        for label, row in report["per_class"].items():
            print(
                f"  {label:<20} precision {row['precision']:.3f} recall {row['recall']:.3f} "
                f"f1 {row['f1']:.3f} support {row['support']}"
            )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from maas.demo import run_demo

    return run_demo(args)


# --------------------------------------------------------------------------- batch commands
def cmd_batch_submit(args: argparse.Namespace) -> int:
    from maas import batch

    bar: Callable[[int], None] | None = None
    shown = 0

    def progress(sent: int, total: int) -> None:
        nonlocal bar, shown
        bar = bar or _progress_bar("sending", total)
        bar(sent - shown)
        shown = sent

    record = _batch_call(
        lambda: batch.submit(
            args.data,
            args.queue,
            model=args.model,
            text_column=args.text_column,
            id_column=args.id_column,
            results_uri=args.results,
            texts_per_message=args.texts_per_message,
            max_text_chars=args.max_text_chars,
            max_bytes=args.max_message_bytes,
            progress=progress,
            warn=lambda line: print(f"maas: warning: {line}", file=sys.stderr),
        )
    )
    print(record.id)
    sent = sum(record.messages.values())
    print(
        f"batch {record.id}: {sent} texts in {len(record.messages)} messages to {record.queue_url}"
        f"; results in {record.results_uri}; record {record.path}",
        file=sys.stderr,
    )
    if record.ids_assigned:
        print(
            f"the input has no id column: ids are its row numbers, written to {record.ids_path}",
            file=sys.stderr,
        )
    return 0


def cmd_batch_status(args: argparse.Namespace) -> int:
    from maas import batch

    report = _batch_call(lambda: batch.status(args.batch_id, dlq_url=args.dlq))
    if args.json:
        _print_json(report.to_dict())
        return 0
    print(f"batch {report.batch}" + (" (finished)" if report.finished else ""))
    print(f"{'':<10}{'messages':>10}{'texts':>10}")
    for name in ("submitted", "done", "failed", "pending"):
        count = getattr(report, name)
        print(f"{name:<10}{count.messages:>10}{count.texts:>10}")
    if report.not_sent:
        print(f"{'not sent':<10}{'':>10}{report.not_sent:>10}")
    for code, texts in sorted(report.reasons.items()):
        print(f"  failed texts, {code}: {texts}")
    return 0


def cmd_batch_results(args: argparse.Namespace) -> int:
    from maas import batch

    report = _batch_call(lambda: batch.write_results(args.batch_id, args.out, dlq_url=args.dlq))
    print(
        f"wrote {report.submitted.texts} rows to {args.out}: {report.done.texts} done, "
        f"{report.failed.texts} failed, {report.pending.texts + report.not_sent} pending",
        file=sys.stderr,
    )
    return 0


def cmd_batch_redrive(args: argparse.Namespace) -> int:
    from maas import batch

    report = _batch_call(lambda: batch.redrive(args.dlq, args.queue, limit=args.max))
    print(report.moved)
    print(f"moved {report.moved} messages from {args.dlq} to {args.queue}", file=sys.stderr)
    if report.left:
        print(
            f"maas: warning: {report.left} messages came back to the dead-letter queue while "
            "this ran (failing again): left there",
            file=sys.stderr,
        )
    return 0


def _batch_call(call: Callable[[], Any]) -> Any:
    """Run a batch operation; local file errors become one-line errors too."""
    try:
        return call()
    except OSError as exc:
        raise MaasError(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")) from exc


# ------------------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maas", description="Text-classification models as a service."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train", help="train a classifier and export a quantized TFLite artifact"
    )
    train.add_argument(
        "data", type=Path, metavar="DATA", help="CSV or JSONL with text and label columns"
    )
    train.add_argument("--out", type=Path, required=True, help="artifact directory to create")
    train.add_argument("--text-column")
    train.add_argument("--label-column")
    train.add_argument("--preset", choices=("default", "seed"))
    train.add_argument("--epochs", type=int)
    train.add_argument("--seed", type=int)
    train.add_argument(
        "--allow-quality-drop",
        action="store_true",
        help="keep an artifact whose quantized accuracy is >1 point below float",
    )
    train.set_defaults(func=cmd_train)

    publish = commands.add_parser("publish", help="publish an artifact as a new immutable version")
    publish.add_argument("dir", type=Path, metavar="DIR")
    publish.add_argument("--store", help=STORE_HELP)
    publish.add_argument("--name", required=True)
    publish.add_argument("--alias")
    publish.add_argument("--allow-quality-drop", action="store_true")
    publish.set_defaults(func=cmd_publish)

    models = commands.add_parser("models", help="list models, versions and aliases")
    models.add_argument("--store", help=STORE_HELP)
    models.add_argument("--name")
    models.add_argument("--json", action="store_true")
    models.set_defaults(func=cmd_models)

    promote = commands.add_parser("promote", help="point an alias at a version")
    promote.add_argument("--store", help=STORE_HELP)
    promote.add_argument("--name", required=True)
    promote.add_argument("--version", required=True)
    promote.add_argument("--alias", required=True)
    promote.set_defaults(func=cmd_promote)

    predict = commands.add_parser("predict", help="classify texts (JSON lines on stdout)")
    predict.add_argument("--store", help=STORE_HELP)
    predict.add_argument("--model", required=True, help="NAME, NAME@ALIAS or NAME:VERSION")
    predict.add_argument(
        "text", nargs="*", metavar="TEXT", help="texts, or '-' to read lines from stdin"
    )
    predict.set_defaults(func=cmd_predict)

    evaluate = commands.add_parser(
        "evaluate", help="accuracy and macro-F1 of a published model on labelled data"
    )
    evaluate.add_argument("--store", help=STORE_HELP)
    evaluate.add_argument("--model", required=True, help="NAME, NAME@ALIAS or NAME:VERSION")
    evaluate.add_argument("data", type=Path, metavar="DATA")
    evaluate.add_argument("--text-column", default="text")
    evaluate.add_argument("--label-column", default="label")
    evaluate.add_argument("--json", action="store_true", help="one JSON object on stdout")
    evaluate.set_defaults(func=cmd_evaluate)

    demo = commands.add_parser("demo", help="train, publish and serve the demo model end to end")
    demo.add_argument(
        "--data", type=Path, help="labelled data (default: the bundled Chinese reviews)"
    )
    demo.add_argument("--workdir", type=Path, default=Path(".maas"))
    demo.add_argument("--preset", choices=("default", "seed"), default="default")
    demo.set_defaults(func=cmd_demo)

    _add_batch_parser(commands)
    return parser


def _add_batch_parser(commands: Any) -> None:
    batch = commands.add_parser("batch", help="classify a file through the queue function (SQS)")
    actions = batch.add_subparsers(dest="batch_command", required=True, metavar="ACTION")

    submit = actions.add_parser("submit", help="send a CSV or JSONL file; prints the batch id")
    submit.add_argument("data", type=Path, metavar="DATA", help="CSV or JSONL with a text column")
    submit.add_argument("--queue", required=True, metavar="URL", help="the queue's URL")
    submit.add_argument(
        "--model", help="NAME, NAME@ALIAS or NAME:VERSION (default: the function's)"
    )
    submit.add_argument(
        "--id-column",
        help="column of the texts' ids (default: 'id' when present, else row numbers)",
    )
    submit.add_argument("--text-column", default="text")
    submit.add_argument(
        "--results",
        metavar="URI",
        help="where the queue function writes results (default: $MAAS_RESULTS, then .maas/results)",
    )
    submit.add_argument(
        "--texts-per-message",
        type=int,
        default=1000,
        metavar="N",
        help="most texts in one message: the function's MAAS_MAX_TEXTS (default: 1000)",
    )
    submit.add_argument(
        "--max-text-chars",
        type=int,
        default=10_000,
        metavar="N",
        help="longer texts are not sent, and reported failed (the function's MAAS_MAX_TEXT_CHARS)",
    )
    submit.add_argument(
        "--max-message-bytes", type=int, default=262_144, metavar="N", help=argparse.SUPPRESS
    )
    submit.set_defaults(func=cmd_batch_submit)

    status = actions.add_parser(
        "status", help="messages and texts submitted, done, failed, pending"
    )
    status.add_argument("batch_id", metavar="BATCH_ID")
    status.add_argument(
        "--dlq", metavar="URL", help="also count the batch's dead letters as failed"
    )
    status.add_argument("--json", action="store_true", help="one JSON object on stdout")
    status.set_defaults(func=cmd_batch_status)

    results = actions.add_parser("results", help="one row per input text, joined on its id")
    results.add_argument("batch_id", metavar="BATCH_ID")
    results.add_argument("--out", required=True, type=Path, metavar="FILE", help=".jsonl or .csv")
    results.add_argument(
        "--dlq", metavar="URL", help="also count the batch's dead letters as failed"
    )
    results.set_defaults(func=cmd_batch_results)

    redrive = actions.add_parser("redrive", help="move dead letters back to the queue, after a fix")
    redrive.add_argument("--dlq", required=True, metavar="URL")
    redrive.add_argument("--queue", required=True, metavar="URL")
    redrive.add_argument("--max", type=int, metavar="N", help="move at most N messages")
    redrive.set_defaults(func=cmd_batch_redrive)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except MaasError as exc:
        print(f"maas: error: {exc.message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("maas: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
