"""`maas publish`, `maas models`, `maas promote`: the model store from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from maas.cli.common import (
    REASON_HELP,
    STORE_HELP,
    add_file_options,
    command,
    directory_size,
    file_options,
    note,
    open_store,
    print_json,
    progress,
)
from maas.errors import InvalidInput
from maas.store.refs import similar


def add_parsers(commands: Any) -> None:
    publish = command(
        commands,
        "publish",
        "publish an artifact as a new immutable, signed version",
        "Verify an artifact (its files, the quality gate, the golden examples in this "
        "environment's runtime) and publish it as the next version of NAME; prints the version.",
    )
    publish.add_argument("dir", type=Path, metavar="DIR", help="the artifact (maas train --out)")
    publish.add_argument("--store", metavar="URI", help=STORE_HELP)
    publish.add_argument("--name", required=True, help="the model's name")
    publish.add_argument("--alias", help="also point this alias at the new version (default: none)")
    publish.add_argument(
        "--allow-quality-drop", action="store_true", help="publish despite a failed quality gate"
    )
    publish.add_argument(
        "--reuse",
        action="store_true",
        help="if a version already holds this exact model, use it instead of a new one",
    )
    publish.set_defaults(func=run_publish)

    models = command(commands, "models", "list models, versions and aliases")
    models.add_argument("--store", metavar="URI", help=STORE_HELP)
    models.add_argument("--name", help="only this model (default: every model)")
    models.add_argument("--json", action="store_true", help="one JSON object on stdout")
    models.set_defaults(func=run_models)

    versions = command(commands, "versions", "delete versions, or keep only the newest N")
    actions = versions.add_subparsers(dest="versions_command", required=True, metavar="ACTION")
    delete = command(actions, "delete", "delete a version (refused while an alias routes to it)")
    delete.add_argument("reference", metavar="NAME:VERSION", help="the version to delete")
    delete.add_argument("--store", metavar="URI", help=STORE_HELP)
    delete.set_defaults(func=run_delete_version)
    prune = command(actions, "prune", "delete all but the newest N versions (aliased ones stay)")
    prune.add_argument("name", metavar="NAME", help="the model's name")
    prune.add_argument("--keep", type=int, required=True, metavar="N", help="versions to keep")
    prune.add_argument("--store", metavar="URI", help=STORE_HELP)
    prune.set_defaults(func=run_prune)

    promote = command(
        commands,
        "promote",
        "point an alias at a version; canary and shadow versions; refuses a worse model",
        "Point an alias at a version (which ends its canary and shadow), or - without "
        "--version - change only its canary or shadow. A version that replaces another is "
        "compared with it first: on --check DATA (accuracy of both), else on their own test "
        "accuracy, and refused if it is more than --max-drop points worse, unless --force. "
        "Every change is recorded in the alias's history (maas alias history).",
    )
    promote.add_argument("--store", metavar="URI", help=STORE_HELP)
    promote.add_argument("--name", required=True, help="the model's name")
    promote.add_argument(
        "--version", help="the version (1, 2, ...); default: keep the alias's own version"
    )
    promote.add_argument("--alias", required=True, help="the alias (e.g. production, staging)")
    promote.add_argument(
        "--create",
        action="store_true",
        help="create the alias even though its name is close to an existing one",
    )
    promote.add_argument("--reason", metavar="TEXT", help=REASON_HELP)
    promote.add_argument(
        "--canary",
        metavar="V=SHARE",
        help="send SHARE of the routing keys (e.g. 10%%) to version V (default: the alias's "
        "canary stays as it is)",
    )
    promote.add_argument(
        "--shadow",
        metavar="V[=SHARE]",
        help="also run version V on SHARE of the requests (default share: 100%%), compared, "
        "never returned",
    )
    promote.add_argument("--no-canary", action="store_true", help="end the alias's canary")
    promote.add_argument("--no-shadow", action="store_true", help="end the alias's shadow")
    promote.add_argument(
        "--check",
        type=Path,
        metavar="DATA",
        help="labelled data to compare the two versions on (default: their own test accuracy)",
    )
    add_file_options(promote)
    promote.add_argument(
        "--max-drop",
        type=float,
        default=1.0,
        metavar="POINTS",
        help="refuse a version more than this many accuracy points worse",
    )
    promote.add_argument("--force", action="store_true", help="promote even if it is worse")
    promote.set_defaults(func=run_promote)


def run_publish(args: argparse.Namespace) -> int:
    publish_artifact(
        Path(args.dir), args.store, args.name, args.alias, args.allow_quality_drop, args.reuse
    )
    return 0


def publish_artifact(
    directory: Path,
    store_option: str | None,
    name: str,
    alias: str | None,
    allow_quality_drop: bool,
    reuse: bool,
) -> None:
    """`maas publish` (also `maas train --publish`): verify, upload with progress, print the
    version on stdout and say what happened."""
    from maas.store.publishing import publish

    store = open_store(store_option, publishing=True)
    with progress(f"uploading to {store.uri}", directory_size(directory), "B") as bar:
        published = publish(
            directory,
            store,
            name,
            alias=alias,
            allow_quality_drop=allow_quality_drop,
            reuse=reuse,
            progress=lambda _file, sent: bar.advance(sent),
        )
    print(published.version)
    how = "reused (the same model)" if published.reused else "published"
    note(f"{how} {name}:{published.version} in {store.uri}" + (f" as @{alias}" if alias else ""))


def run_models(args: argparse.Namespace) -> int:
    store = open_store(args.store)
    names = [args.name] if args.name else store.models()
    listing: list[dict[str, Any]] = []
    for name in names:
        versions = store.versions(name)
        if args.name and not versions:
            store.require(name)
        aliases = store.aliases(name)
        entries = []
        for version in versions:
            manifest = store.manifest(name, version)
            quantized = (manifest.metrics or {}).get("quantized")
            entries.append(
                {
                    "version": version,
                    "aliases": sorted(a for a, v in aliases.items() if v == version),
                    "labels": manifest.labels,
                    "accuracy": quantized.accuracy if quantized else None,
                    "published_at": manifest.published_at,
                }
            )
        listing.append({"name": name, "versions": entries, "aliases": aliases})
    if args.json:
        print_json({"store": store.uri, "models": listing})
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


def run_delete_version(args: argparse.Namespace) -> int:
    from maas.errors import InvalidModelRef
    from maas.store.refs import ModelRef

    ref = ModelRef.parse(args.reference)
    if ref.version is None:
        raise InvalidModelRef(f"{args.reference!r} names no version: use NAME:VERSION")
    store = open_store(args.store)
    deleted = store.delete_version(ref.name, ref.version)
    note(f"deleted {ref.name}:{ref.version} ({len(deleted)} files; its number is not reused)")
    return 0


def run_prune(args: argparse.Namespace) -> int:
    store = open_store(args.store)
    store.require(args.name)
    deleted = store.prune(args.name, args.keep)
    kept = store.versions(args.name)
    note(f"{args.name}: deleted {', '.join(deleted) or 'nothing'}; kept {', '.join(kept)}")
    return 0


def run_promote(args: argparse.Namespace) -> int:
    from maas.store.refs import is_version
    from maas.store.registry import KEEP
    from maas.store.routing import Split

    store = open_store(args.store)
    existing = store.aliases(args.name) if args.name in store.models() else {}
    if args.alias not in existing and not args.create:
        close = similar(args.alias, list(existing), cutoff=0.75)
        if close:
            raise InvalidInput(
                f"{args.name} has no alias {args.alias!r}; did you mean {close[0]!r}? "
                "(pass --create to make a new alias)"
            )
    splits = args.canary or args.shadow or args.no_canary or args.no_shadow
    if args.version is None and not splits:
        raise InvalidInput("give --version, or change a split with --canary / --shadow")
    current = existing.get(args.alias)
    if current is not None and not is_version(current):
        current = None  # an unreadable pointer: nothing to compare with; this promote repairs it
    if args.version is None and current is None:
        raise InvalidInput(f"{args.name}@{args.alias} does not exist yet: give --version")
    version = str(args.version or current)
    keep = KEEP if args.version is None else None
    canary = Split.parse(args.canary, "--canary") if args.canary else keep
    shadow = Split.parse(args.shadow, "--shadow", default_share=1.0) if args.shadow else keep
    canary = None if args.no_canary else canary
    shadow = None if args.no_shadow else shadow
    details = None
    if args.version and current and args.version != current:
        details = {"check": guard(store, args, candidate=args.version, incumbent=current)}
    before = store.promote(
        args.name,
        version,
        args.alias,
        action="promote" if args.version else "split",
        reason=args.reason,
        canary=canary,
        shadow=shadow,
        details=details,
    )
    route = store.route(args.name, args.alias)
    was = "new alias" if before is None else f"was {before}"
    extra = "".join(
        f", {kind} {split.version} at {split.share:.1%}"
        for kind, split in (("canary", route.canary), ("shadow", route.shadow))
        if split
    )
    note(f"{args.name}@{args.alias} -> {route.version} ({was}{extra})")
    return 0


def guard(
    store: Any, args: argparse.Namespace, *, candidate: str, incumbent: str
) -> dict[str, Any]:
    """Compare the candidate with the version it replaces; refuse a regression of more than
    --max-drop points unless --force. Returns what the history records."""
    from maas.errors import QualityGateFailed

    if args.check:
        from maas.cli.predict import open_classifier
        from maas.client.data import read_labelled
        from maas.core.metrics import classification_report

        data = read_labelled(args.check, "text", "label", file_options(args))
        scores = {}
        for version in (candidate, incumbent):
            classifier = open_classifier(f"{args.name}:{version}", args.store)
            unknown = sorted(set(data.labels) - set(classifier.labels))
            if unknown:
                raise InvalidInput(
                    f"{args.check}: labels {', '.join(map(repr, unknown))} are not among "
                    f"{args.name}:{version}'s"
                )
            index = {label: i for i, label in enumerate(classifier.labels)}
            predicted = classifier.probabilities(data.texts).argmax(axis=1)
            report = classification_report(
                [index[label] for label in data.labels], predicted, classifier.labels
            )
            scores[version] = float(report["accuracy"])
        basis = str(args.check)
    else:
        scores = {}
        for version in (candidate, incumbent):
            quantized = (store.manifest(args.name, version).metrics or {}).get("quantized")
            if quantized is None:
                return {"basis": "none: a version records no test accuracy", "passed": True}
            scores[version] = float(quantized.accuracy)
        basis = "each version's own test split"
    drop = (scores[incumbent] - scores[candidate]) * 100
    passed = drop <= args.max_drop
    record = {
        "basis": basis,
        "candidate": {"version": candidate, "accuracy": round(scores[candidate], 6)},
        "incumbent": {"version": incumbent, "accuracy": round(scores[incumbent], 6)},
        "max_drop_points": args.max_drop,
        "passed": passed,
        "forced": bool(args.force and not passed),
    }
    if not passed and not args.force:
        raise QualityGateFailed(
            f"{args.name}:{candidate} is {drop:.1f} accuracy points worse than {incumbent} "
            f"on {basis} ({scores[candidate]:.4f} vs {scores[incumbent]:.4f}; allowed "
            f"{args.max_drop:g}); pass --force to promote it anyway"
        )
    return record
