"""`maas batch submit|work|status|results|redrive`: a file through the queue function (SQS)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from maas import aws
from maas.cli.common import (
    MODEL_HELP,
    STORE_HELP,
    add_file_options,
    command,
    file_options,
    note,
    print_json,
    progress,
    store_uri,
    warn,
)
from maas.core.limits import (
    MAX_EXPLAINED_TEXTS_PER_MESSAGE,
    MAX_TEXT_CHARS,
    MAX_TEXTS_PER_MESSAGE,
    SQS_MAX_MESSAGE_BYTES,
)
from maas.errors import BadData
from maas.progress import counted

RESULTS_HELP = (
    "where the queue function writes results (default: $MAAS_RESULTS, then .maas/results)"
)


def add_parser(commands: Any) -> None:
    batch = command(commands, "batch", "classify a file through the queue function (SQS)")
    actions = batch.add_subparsers(dest="batch_command", required=True, metavar="ACTION")

    submit = command(
        actions, "submit", "send a data file's texts to the queue; prints the batch id"
    )
    submit.add_argument("data", type=Path, metavar="DATA", help="CSV, TSV, JSONL or JSON")
    submit.add_argument("--queue", required=True, metavar="URL", help="the queue's URL")
    submit.add_argument("--model", help=f"{MODEL_HELP} (default: the function's)")
    submit.add_argument(
        "--id-column",
        metavar="COLUMN",
        help="the texts' ids (default: 'id' when present, else row numbers)",
    )
    submit.add_argument(
        "--text-column", metavar="COLUMN", default="text", help="the texts' column or field"
    )
    add_file_options(submit)
    submit.add_argument("--results", metavar="URI", help=RESULTS_HELP)
    submit.add_argument(
        "--explain",
        action="store_true",
        help=f"explain every prediction in the results (at most "
        f"{MAX_EXPLAINED_TEXTS_PER_MESSAGE} texts a message)",
    )
    submit.add_argument(
        "--texts-per-message",
        type=int,
        default=MAX_TEXTS_PER_MESSAGE,
        metavar="N",
        help="most texts in one message (the queue function's MAAS_MAX_TEXTS)",
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

    work = command(
        actions,
        "work",
        "run the queue function here until the queue is empty",
        "Consume the queue with the real queue function, as Lambda's event source mapping "
        "does: batches of messages, failed messages left for redelivery, the queue's redrive "
        "policy moving the hopeless ones to its DLQ. Stops when nothing is left (or, with "
        "--follow, at Ctrl-C).",
    )
    work.add_argument("--queue", required=True, metavar="URL", help="the queue's URL")
    work.add_argument("--store", metavar="URI", help=STORE_HELP)
    work.add_argument("--results", metavar="URI", help=RESULTS_HELP)
    work.add_argument(
        "--model", help="the model a message naming none uses (default: $MAAS_MODEL_NAME)"
    )
    work.add_argument(
        "--batch-size", metavar="N", type=int, default=25, help="messages per invocation"
    )
    work.add_argument("--follow", action="store_true", help="keep waiting for messages")
    work.add_argument(
        "--function-logs", action="store_true", help="print the function's JSON log lines too"
    )
    work.set_defaults(func=run_work)

    queue = command(
        actions,
        "create-queue",
        "make a queue and its dead-letter queue; prints the queue's URL",
        "Create NAME and NAME-dlq with a redrive policy, as the template makes them: for a "
        "local SQS (moto server: AWS_ENDPOINT_URL=http://127.0.0.1:5000) or a test account. "
        "The dead-letter queue's URL goes to stderr.",
    )
    queue.add_argument("name", metavar="NAME", help="the queue's name")
    queue.add_argument("--visibility-timeout", type=int, default=180, metavar="S", help="seconds")
    queue.add_argument(
        "--max-receives",
        type=int,
        default=5,
        metavar="N",
        help="receives before a message moves to the dead-letter queue",
    )
    queue.set_defaults(func=run_create_queue)

    status = command(actions, "status", "messages and texts submitted, done, failed, pending")
    status.add_argument("batch_id", metavar="BATCH_ID", help="what `submit` printed")
    status.add_argument(
        "--dlq", metavar="URL", help="also count the batch's dead letters (default: not counted)"
    )
    status.add_argument("--json", action="store_true", help="one JSON object on stdout")
    status.set_defaults(func=run_status)

    results = command(actions, "results", "one row per input text, joined on its id")
    results.add_argument("batch_id", metavar="BATCH_ID", help="what `submit` printed")
    results.add_argument("--out", required=True, type=Path, metavar="FILE", help=".jsonl or .csv")
    results.add_argument(
        "--dlq", metavar="URL", help="also count the batch's dead letters (default: not counted)"
    )
    results.set_defaults(func=run_results)

    redrive = command(actions, "redrive", "move dead letters back to the queue, after a fix")
    redrive.add_argument("--dlq", required=True, metavar="URL", help="the dead-letter queue")
    redrive.add_argument("--queue", required=True, metavar="URL", help="the queue")
    redrive.add_argument(
        "--max", type=int, metavar="N", help="move at most N messages (default: all of them)"
    )
    redrive.set_defaults(func=run_redrive)


def run_submit(args: argparse.Namespace) -> int:
    from maas.client import batch

    bars: dict[str, Any] = {}
    shown = 0

    def advance(sent: int, total: int) -> None:
        nonlocal shown
        bar = bars.setdefault("bar", progress("sending", total, "texts"))
        bar.advance(sent - shown)
        shown = sent

    try:
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
                progress=advance,
                warn=warn,
                file_options=file_options(args),
                explain=args.explain,
            )
        )
    finally:
        if "bar" in bars:
            bars["bar"].close()
    print(record.id)
    sent = sum(record.messages.values())
    note(
        f"batch {record.id}: {counted(sent, 'text')} in {counted(len(record.messages), 'message')} "
        f"to {record.queue_url}"
        f"; results in {record.results_uri}; record {record.path}"
    )
    if record.ids_assigned:
        note(f"the input has no id column: ids are its row numbers, written to {record.ids_path}")
    return 0


def run_work(args: argparse.Namespace) -> int:
    from maas.client.settings import ClientSettings
    from maas.local.lambda_runtime import function_logs
    from maas.local.worker import WorkReport, work
    from maas.service.settings import ServiceSettings

    overrides: dict[str, Any] = {"store": store_uri(args.store)}
    overrides["results"] = args.results or ClientSettings.from_env().results
    if args.model:
        overrides["default_model"] = args.model
    settings = ServiceSettings.from_env("queue", **overrides)
    with progress("messages", None, "msg") as bar:
        done = 0

        def show(report: WorkReport) -> None:
            nonlocal done
            bar.advance(report.messages - done, failed=report.failed)
            done = report.messages

        with function_logs(args.function_logs):
            report = work(args.queue, settings, batch_size=args.batch_size,
                          follow=args.follow, progress=show)  # fmt: skip
    note(
        f"{counted(report.invocations, 'invocation')}, "
        f"{counted(report.messages, 'message')} delivered: "
        f"{report.succeeded} succeeded, {report.failed} failed (retried, then dead-lettered); "
        f"results in {settings.results}"
    )
    for error in report.errors:
        warn(f"an invocation failed as a whole: {error}")
    return 0


def run_create_queue(args: argparse.Namespace) -> int:
    from maas.client.sqs import sqs_client
    from maas.errors import QueueError
    from maas.local.event_source import create_queue

    if not re.fullmatch(r"[A-Za-z0-9_-]{1,76}", args.name):
        raise BadData(
            f"invalid queue name {args.name!r}: letters, digits, '-' and '_', at most 76 "
            "(SQS allows 80; the dead-letter queue adds '-dlq')"
        )
    if args.visibility_timeout < 0 or args.max_receives < 1:
        raise BadData("--visibility-timeout must be 0 or more and --max-receives 1 or more")
    client = sqs_client()
    with aws.errors(f"cannot create queue {args.name}", QueueError):
        queue, dlq = create_queue(
            client,
            args.name,
            visibility_timeout=args.visibility_timeout,
            max_receive_count=args.max_receives,
        )
    print(queue)
    note(f"dead-letter queue: {dlq} (after {counted(args.max_receives, 'receive')})")
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
