"""`maas publish`, `maas models`, `maas promote`: the model store from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from maas.cli.common import STORE_HELP, note, open_store, print_json, progress_bar
from maas.errors import ModelNotFound


def add_parsers(commands: Any) -> None:
    publish = commands.add_parser("publish", help="publish an artifact as a new immutable version")
    publish.add_argument("dir", type=Path, metavar="DIR")
    publish.add_argument("--store", help=STORE_HELP)
    publish.add_argument("--name", required=True)
    publish.add_argument("--alias")
    publish.add_argument("--allow-quality-drop", action="store_true")
    publish.set_defaults(func=run_publish)

    models = commands.add_parser("models", help="list models, versions and aliases")
    models.add_argument("--store", help=STORE_HELP)
    models.add_argument("--name")
    models.add_argument("--json", action="store_true")
    models.set_defaults(func=run_models)

    promote = commands.add_parser("promote", help="point an alias at a version")
    promote.add_argument("--store", help=STORE_HELP)
    promote.add_argument("--name", required=True)
    promote.add_argument("--version", required=True)
    promote.add_argument("--alias", required=True)
    promote.set_defaults(func=run_promote)


def run_publish(args: argparse.Namespace) -> int:
    from maas.store.publishing import publish

    store = open_store(args.store, publishing=True)
    total = sum(f.stat().st_size for f in Path(args.dir).iterdir() if f.is_file())
    bar = progress_bar(f"uploading to {store.uri}", total)
    version = publish(
        args.dir,
        store,
        args.name,
        alias=args.alias,
        allow_quality_drop=args.allow_quality_drop,
        progress=lambda _file, sent: bar(sent),
    )
    print(version)
    note(
        f"published {args.name}:{version} to {store.uri}"
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
            raise ModelNotFound(f"no model named {name!r} in {store.uri}")
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
    store.promote(args.name, args.version, args.alias)
    note(f"{args.name}@{args.alias} -> {args.version}")
    return 0
