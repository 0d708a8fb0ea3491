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
    status = subprocess.run(command, check=False).returncode
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
    return parser


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
