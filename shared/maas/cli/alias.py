"""`maas alias list|delete|history` and `maas rollback`: the movable names of a model's
versions, and their recorded changes."""

from __future__ import annotations

import argparse
from typing import Any

from maas.cli.common import REASON_HELP, STORE_HELP, command, note, open_store, print_json
from maas.errors import InvalidModelRef
from maas.store.refs import ModelRef


def add_parser(commands: Any) -> None:
    alias = command(commands, "alias", "list, delete or show the history of a model's aliases")
    actions = alias.add_subparsers(dest="alias_command", required=True, metavar="ACTION")

    listing = command(actions, "list", "every alias and the version it points at")
    listing.add_argument("--store", metavar="URI", help=STORE_HELP)
    listing.add_argument("--name", help="only this model (default: every model)")
    listing.add_argument("--json", action="store_true", help="one JSON object on stdout")
    listing.set_defaults(func=run_list)

    delete = command(actions, "delete", "remove an alias (its version stays)")
    delete.add_argument("reference", metavar="NAME@ALIAS", help="the alias to delete")
    delete.add_argument("--store", metavar="URI", help=STORE_HELP)
    delete.add_argument("--reason", metavar="TEXT", help=REASON_HELP)
    delete.set_defaults(func=run_delete)

    history = command(actions, "history", "every change of an alias: who, when, from, to, why")
    history.add_argument("reference", metavar="NAME@ALIAS", help="the alias")
    history.add_argument("--store", metavar="URI", help=STORE_HELP)
    history.add_argument("--json", action="store_true", help="one JSON object on stdout")
    history.set_defaults(func=run_history)

    rollback = command(
        commands,
        "rollback",
        "move an alias back one step in its history (or to --to V)",
        "Move an alias back: to the version it pointed at before the change that brought it "
        "to its current one (a rollback is undone by promoting again, not by another "
        "rollback), or to the version given with --to. Recorded in the alias's history.",
    )
    rollback.add_argument("name", metavar="NAME", help="the model's name")
    rollback.add_argument("--alias", required=True, help="the alias to move back")
    rollback.add_argument("--to", metavar="V", help="this version (default: one step back)")
    rollback.add_argument("--reason", metavar="TEXT", help=REASON_HELP)
    rollback.add_argument("--store", metavar="URI", help=STORE_HELP)
    rollback.set_defaults(func=run_rollback)


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


def _alias_ref(reference: str) -> tuple[str, str]:
    ref = ModelRef.parse(reference)
    if ref.alias is None:
        raise InvalidModelRef(f"{reference!r} names no alias: use NAME@ALIAS")
    return ref.name, ref.alias


def run_history(args: argparse.Namespace) -> int:
    name, alias = _alias_ref(args.reference)
    store = open_store(args.store)
    changes = store.history(name, alias)
    if args.json:
        print_json(
            {
                "store": store.uri,
                "alias": f"{name}@{alias}",
                "changes": [c.to_dict() for c in changes],
            }
        )
        return 0
    if not changes:
        note(f"{name}@{alias} has no recorded changes in {store.uri}")
        return 0
    for change in changes:
        moved = f"{change.before or '-'} -> {change.after or '(deleted)'}"
        why = f"  {change.reason}" if change.reason else ""
        print(f"{change.seq:>4}  {change.at}  {change.action:<8} {moved:<12} {change.by}{why}")
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    store = open_store(args.store)
    before, after = store.rollback(args.name, args.alias, to=args.to, reason=args.reason)
    if before == after:
        note(f"{args.name}@{args.alias} -> {after} (its canary and shadow ended)")
    else:
        note(f"{args.name}@{args.alias} -> {after} (rolled back from {before})")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    name, alias = _alias_ref(args.reference)
    store = open_store(args.store)
    version = store.delete_alias(name, alias, reason=args.reason)
    note(f"deleted {name}@{alias} (it pointed at {version}; the version stays)")
    return 0
