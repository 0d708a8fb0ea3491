"""`maas publish`, `maas models`, `maas promote`: the model store from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from maas.cli.common import (
    STORE_HELP,
    command,
    directory_size,
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

    promote = command(commands, "promote", "point an alias at a version")
    promote.add_argument("--store", metavar="URI", help=STORE_HELP)
    promote.add_argument("--name", required=True, help="the model's name")
    promote.add_argument("--version", required=True, help="the version (1, 2, ...)")
    promote.add_argument("--alias", required=True, help="the alias (e.g. production, staging)")
    promote.add_argument(
        "--create",
        action="store_true",
        help="create the alias even though its name is close to an existing one",
    )
    promote.set_defaults(func=run_promote)


def run_publish(args: argparse.Namespace) -> int:
    from maas.store.publishing import publish

    store = open_store(args.store, publishing=True)
    with progress(f"uploading to {store.uri}", directory_size(Path(args.dir)), "B") as bar:
        published = publish(
            args.dir,
            store,
            args.name,
            alias=args.alias,
            allow_quality_drop=args.allow_quality_drop,
            reuse=args.reuse,
            progress=lambda _file, sent: bar.advance(sent),
        )
    print(published.version)
    how = "reused (the same model)" if published.reused else "published"
    note(
        f"{how} {args.name}:{published.version} in {store.uri}"
        + (f" as @{args.alias}" if args.alias else "")
    )
    return 0


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


def run_promote(args: argparse.Namespace) -> int:
    store = open_store(args.store)
    existing = store.aliases(args.name) if args.name in store.models() else {}
    if args.alias not in existing and not args.create:
        close = similar(args.alias, list(existing), cutoff=0.75)
        if close:
            raise InvalidInput(
                f"{args.name} has no alias {args.alias!r}; did you mean {close[0]!r}? "
                "(pass --create to make a new alias)"
            )
    before = store.promote(args.name, args.version, args.alias)
    was = "new alias" if before is None else f"was {before}"
    note(f"{args.name}@{args.alias} -> {args.version} ({was})")
    return 0
