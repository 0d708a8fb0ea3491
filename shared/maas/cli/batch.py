"""`maas batch submit|status|results|redrive`: a file through the queue function (SQS)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from maas.cli.common import note, print_json, progress_bar, warn
from maas.core.limits import MAX_TEXT_CHARS, MAX_TEXTS_PER_MESSAGE, SQS_MAX_MESSAGE_BYTES
from maas.errors import BadData


def run_submit(args: argparse.Namespace) -> int:
    from maas.client import batch

    bar: Callable[[int], None] | None = None
    shown = 0

    def progress(sent: int, total: int) -> None:
        nonlocal bar, shown
        bar = bar or progress_bar("sending", total)
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
            warn=warn,
        )
    )
    print(record.id)
    sent = sum(record.messages.values())
    note(
        f"batch {record.id}: {sent} texts in {len(record.messages)} messages to {record.queue_url}"
        f"; results in {record.results_uri}; record {record.path}"
    )
    if record.ids_assigned:
        note(f"the input has no id column: ids are its row numbers, written to {record.ids_path}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    from maas.client import batch

    report = _batch_call(lambda: batch.status(args.batch_id, dlq_url=args.dlq))
    if args.json:
        print_json(report.to_dict())
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


def run_results(args: argparse.Namespace) -> int:
    from maas.client import batch

    report = _batch_call(lambda: batch.write_results(args.batch_id, args.out, dlq_url=args.dlq))
    note(
        f"wrote {report.submitted.texts} rows to {args.out}: {report.done.texts} done, "
        f"{report.failed.texts} failed, {report.pending.texts + report.not_sent} pending"
    )
    return 0


def run_redrive(args: argparse.Namespace) -> int:
    from maas.client import batch

    report = _batch_call(lambda: batch.redrive(args.dlq, args.queue, limit=args.max))
    print(report.moved)
    note(f"moved {report.moved} messages from {args.dlq} to {args.queue}")
    if report.left:
        warn(
            f"{report.left} messages came back to the dead-letter queue while "
            "this ran (failing again): left there"
        )
    return 0


def _batch_call(call: Callable[[], Any]) -> Any:
    """Run a batch operation; local file errors become one-line errors too."""
    try:
        return call()
    except OSError as exc:
        raise BadData(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")) from exc


def add_parser(commands: Any) -> None:
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
        default=MAX_TEXTS_PER_MESSAGE,
        metavar="N",
        help="most texts in one message: the queue function's MAAS_MAX_TEXTS "
        f"(default: {MAX_TEXTS_PER_MESSAGE})",
    )
    submit.add_argument(
        "--max-text-chars",
        type=int,
        default=MAX_TEXT_CHARS,
        metavar="N",
        help="longer texts are not sent, and reported failed (the function's MAAS_MAX_TEXT_CHARS)",
    )
    submit.add_argument(
        "--max-message-bytes",
        type=int,
        default=SQS_MAX_MESSAGE_BYTES,
        metavar="N",
        help=argparse.SUPPRESS,
    )
    submit.set_defaults(func=run_submit)

    status = actions.add_parser(
        "status", help="messages and texts submitted, done, failed, pending"
    )
    status.add_argument("batch_id", metavar="BATCH_ID")
    status.add_argument(
        "--dlq", metavar="URL", help="also count the batch's dead letters as failed"
    )
    status.add_argument("--json", action="store_true", help="one JSON object on stdout")
    status.set_defaults(func=run_status)

    results = actions.add_parser("results", help="one row per input text, joined on its id")
    results.add_argument("batch_id", metavar="BATCH_ID")
    results.add_argument("--out", required=True, type=Path, metavar="FILE", help=".jsonl or .csv")
    results.add_argument(
        "--dlq", metavar="URL", help="also count the batch's dead letters as failed"
    )
    results.set_defaults(func=run_results)

    redrive = actions.add_parser("redrive", help="move dead letters back to the queue, after a fix")
    redrive.add_argument("--dlq", required=True, metavar="URL")
    redrive.add_argument("--queue", required=True, metavar="URL")
    redrive.add_argument("--max", type=int, metavar="N", help="move at most N messages")
    redrive.set_defaults(func=run_redrive)
