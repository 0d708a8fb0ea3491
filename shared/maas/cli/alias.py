"""`maas alias list|delete`: the movable names of a model's versions."""

from __future__ import annotations

import argparse
from typing import Any

from maas.cli.common import STORE_HELP, command, note, open_store, print_json
from maas.store.refs import ModelRef


def add_parser(commands: Any) -> None:
    alias = command(commands, "alias", "list or delete a model's aliases")
    actions = alias.add_subparsers(dest="alias_command", required=True, metavar="ACTION")

    listing = command(actions, "list", "every alias and the version it points at")
    listing.add_argument("--store", metavar="URI", help=STORE_HELP)
    listing.add_argument("--name", help="only this model (default: every model)")
    listing.add_argument("--json", action="store_true", help="one JSON object on stdout")
    listing.set_defaults(func=run_list)

    delete = command(actions, "delete", "remove an alias (its version stays)")
    delete.add_argument("reference", metavar="NAME@ALIAS", help="the alias to delete")
    delete.add_argument("--store", metavar="URI", help=STORE_HELP)
    delete.set_defaults(func=run_delete)


def run_list(args: argparse.Namespace) -> int:
    store = open_store(args.store)
    if args.name:
        store.require(args.name)
    names = [args.name] if args.name else store.models()
    aliases = {name: store.aliases(name) for name in names}
    if args.json:
        print_json({"store": store.uri, "aliases": aliases})
        return 0
    for name, pointers in aliases.items():
        for alias, version in sorted(pointers.items()):
            print(f"{name}@{alias} -> {version}")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    ref = ModelRef.parse(args.reference)
    if ref.alias is None:
        from maas.errors import InvalidModelRef

        raise InvalidModelRef(f"{args.reference!r} names no alias: use NAME@ALIAS")
    store = open_store(args.store)
    version = store.delete_alias(ref.name, ref.alias)
    note(f"deleted {ref.name}@{ref.alias} (it pointed at {version}; the version stays)")
    return 0
