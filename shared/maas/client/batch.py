"""Batch classification through the queue: submit a file, follow it, collect its results.

    batch = submit("reviews.csv", queue_url)    # texts packed into SQS messages
    status(batch.id)                            # submitted / done / failed / pending
    write_results(batch.id, "out.jsonl")        # one row per input text, joined on its id
    redrive(dlq_url, queue_url)                 # after a fix, dead letters back to the queue

Submitting packs many texts into each message, as many as fit in `max_bytes` (SQS's 256 KiB,
measured on the encoded body) up to `texts_per_message` (the queue function's MAAS_MAX_TEXTS,
1000 in the template), and sends them with SendMessageBatch (10 entries, 256 KiB a call),
retrying the entries SQS reports as failed. Each message carries its texts' ids (`ids`,
aligned with `texts`) and its id is `<batch id>-<seq>`, so the queue function's result,
`results/<batch id>-<seq>.json`, joins back to the input.

Texts the queue function would refuse - blank, or longer than its MAAS_MAX_TEXT_CHARS - are not
sent: one of them would fail the whole message it travels in. They are recorded as failed at
submission, with their reason, and counted and reported like any other failure.

A batch is remembered locally, in `$MAAS_HOME/batches/` (default `.maas/batches/`):
`<batch id>.json` (queue, results sink, message ids with their text counts, input, time) and
`<batch id>.ids.csv` (row, id, message for every input row, in input order; where assigned ids,
the row numbers, are written back).

Status, from the results sink (a message's latest state wins; a result supersedes failures):
- done: the message has a result;
- failed: no result, and its latest failure is not retryable (a malformed message, an unknown
  model), or was its last allowed attempt (attempt >= the queue's maxReceiveCount, read at
  submission), or the message is in the dead-letter queue (when `dlq_url` is given);
- pending: everything else - not yet processed, or failed with retries left.
A redriven message keeps its last failure record until it is processed again, so it counts as
failed until then. Texts not sent (rejected, or a submission that stopped midway) are counted
apart from the messages: done + failed + pending + not sent == the input's texts.
"""

from __future__ import annotations

import csv
import json
import re
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maas.client.data import AUTO, FileOptions, iter_records
from maas.client.settings import ClientSettings
from maas.client.sqs import (
    Sender,
    delete_messages,
    max_receive_count,
    queue_attributes,
    receive,
    release_messages,
    sqs_client,
    utf8_size,
)
from maas.core.limits import (
    MAX_EXPLAINED_TEXTS_PER_MESSAGE,
    MAX_ID_CHARS,
    MAX_TEXT_CHARS,
    MAX_TEXTS_PER_MESSAGE,
    SQS_MAX_MESSAGE_BYTES,
    check_text,
)
from maas.errors import BadData, BatchError
from maas.files import atomic_file, write_atomically
from maas.progress import counted
from maas.service.sink import ResultSink
from maas.store.refs import ModelRef

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

Progress = Callable[[int, int], None]  # (done so far, total)
DEFAULT_ID_COLUMN = "id"
_BATCH_RE = re.compile(r"[0-9]{8}T[0-9]{6}-[0-9a-f]{6}")
# Characters an SQS body may not contain (besides the control characters JSON escapes anyway).
_NOT_SQS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# --------------------------------------------------------------------------------- records
def batches_dir(home: Path | None = None) -> Path:
    """Where batches are recorded: `<home>/batches` (default `$MAAS_HOME`, then `.maas`)."""
    return home / "batches" if home is not None else ClientSettings.from_env().batches


@dataclass
class BatchRecord:
    """What `submit` remembers about a batch, as `<batches dir>/<id>.json`."""

    id: str
    queue_url: str
    results_uri: str
    input: str
    texts: int  # rows read from the input
    messages: dict[str, int]  # message id -> its number of texts, those sent
    rejected: list[dict[str, Any]]  # texts not sent: {row, id, code, message}
    ids_assigned: bool
    text_column: str
    id_column: str | None
    model: str | None
    max_receive_count: int | None  # the queue's RedrivePolicy, at submission
    created_at: str
    complete: bool = False  # every message sent
    home: Path | None = field(default=None, repr=False, compare=False)  # not saved

    @property
    def path(self) -> Path:
        return batches_dir(self.home) / f"{self.id}.json"

    @property
    def ids_path(self) -> Path:
        return batches_dir(self.home) / f"{self.id}.ids.csv"

    def save(self) -> None:
        doc = {key: value for key, value in asdict(self).items() if key != "home"}
        write_atomically(self.path, json.dumps(doc, ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, batch_id: str, home: Path | None = None) -> BatchRecord:
        if not _BATCH_RE.fullmatch(batch_id):
            raise BatchError(
                f"{batch_id!r} is not a batch id (they look like 20260101T120000-a1b2c3)"
            )
        folder = batches_dir(home)
        path = folder / f"{batch_id}.json"
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BatchError(
                f"no batch {batch_id} in {folder} (batches are recorded where "
                "`maas batch submit` ran; set MAAS_HOME to look elsewhere)"
            ) from None
        return cls(**doc, home=home)


def _new_batch_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


# ----------------------------------------------------------------------------------- input
@dataclass(frozen=True)
class InputText:
    row: int  # 1-based position among the input's records
    id: str
    text: str


def read_input(
    path: str | Path,
    text_column: str = "text",
    id_column: str | None = None,
    file_options: FileOptions = AUTO,
) -> tuple[list[InputText], bool]:
    """The input's texts with their ids, and whether the ids were assigned. Ids come from
    `id_column`, which must then exist; by default from an `id` column when the input has one,
    else they are the row numbers (1, 2, ...). Ids must be unique and 1-256 characters."""
    source = Path(path)
    required = id_column is not None
    id_column = id_column or DEFAULT_ID_COLUMN
    rows: list[InputText] = []
    first_line: dict[str, int] = {}
    assigned: bool | None = None
    for row, (line, record) in enumerate(iter_records(source, file_options), 1):
        where = f"{source.name}:{line}"
        if text_column not in record or record[text_column] is None:
            found = ", ".join(map(str, record)) or "none"
            raise BadData(
                f"{where}: no {text_column!r} column (found: {found}); name it with --text-column",
            )
        if assigned is None:
            assigned = id_column not in record
            if assigned and required:
                found = ", ".join(map(str, record)) or "none"
                raise BadData(f"{where}: no {id_column!r} column for ids (found: {found})")
        if assigned:
            text_id = str(row)
        else:
            text_id = _as_text(record.get(id_column))
            if not text_id.strip():
                raise BadData(f"{where}: empty {id_column!r}")
            if len(text_id) > MAX_ID_CHARS:
                raise BadData(
                    f"{where}: {id_column!r} is longer than {MAX_ID_CHARS} characters",
                )
            if text_id in first_line:
                raise BadData(
                    f"{where}: id {text_id!r} already appears on line {first_line[text_id]}; "
                    "ids must be unique",
                )
            first_line[text_id] = line
        rows.append(InputText(row, text_id, _as_text(record[text_column])))
    if not rows:
        raise BadData(f"{source}: no rows")
    return rows, bool(assigned)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return str(value) if isinstance(value, (int, float)) else json.dumps(value, ensure_ascii=False)


# --------------------------------------------------------------------------------- packing
@dataclass(frozen=True)
class Message:
    id: str
    body: str
    size: int  # bytes of the UTF-8 body
    ids: list[str]


def encode(doc: Any) -> str:
    """Compact JSON that SQS accepts as a body: UTF-8, with the few characters SQS refuses
    (lone surrogates, U+FFFE, U+FFFF) written as JSON escapes."""
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    return _NOT_SQS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def pack(
    texts: Iterable[InputText],
    batch_id: str,
    *,
    model: str | None = None,
    texts_per_message: int = MAX_TEXTS_PER_MESSAGE,
    max_bytes: int = SQS_MAX_MESSAGE_BYTES,
    explain: bool = False,
) -> Iterator[Message]:
    """Messages `{"id", "batch", "model"?, "explain"?, "texts", "ids"}` of consecutive texts,
    each with at most `texts_per_message` texts and at most `max_bytes` bytes of body."""
    head: dict[str, Any] = {"id": "", "batch": batch_id}
    if model:
        head["model"] = model
    if explain:
        head["explain"] = True

    def build(seq: int, chunk: list[InputText]) -> Message:
        message_id = f"{batch_id}-{seq:06d}"
        body = encode(
            head
            | {"id": message_id, "texts": [t.text for t in chunk], "ids": [t.id for t in chunk]}
        )
        size = utf8_size(body)
        if size > max_bytes:  # the running estimate below is exact, so this is a bug
            raise AssertionError(f"message {message_id} is {size} bytes, over {max_bytes}")
        return Message(message_id, body, size, [t.id for t in chunk])

    def empty(seq: int) -> int:  # a message with no texts; each text adds itself, its id, commas
        return utf8_size(encode(head | {"id": f"{batch_id}-{seq:06d}", "texts": [], "ids": []}))

    seq, chunk = 1, list[InputText]()
    size = empty(seq)
    for item in texts:
        added = utf8_size(encode(item.text)) + utf8_size(encode(item.id)) + (2 if chunk else 0)
        if chunk and (len(chunk) >= texts_per_message or size + added > max_bytes):
            yield build(seq, chunk)
            seq, chunk, added = seq + 1, [], added - 2
            size = empty(seq)
        if size + added > max_bytes:
            raise BatchError(
                f"text {item.id!r} is too large for one SQS message ({added} bytes encoded, "
                f"the limit is {max_bytes})"
            )
        chunk.append(item)
        size += added
    if chunk:
        yield build(seq, chunk)


# ---------------------------------------------------------------------------------- submit
def submit(
    data: str | Path,
    queue_url: str,
    *,
    model: str | None = None,
    text_column: str = "text",
    id_column: str | None = None,
    results_uri: str | None = None,
    texts_per_message: int = MAX_TEXTS_PER_MESSAGE,
    max_text_chars: int = MAX_TEXT_CHARS,
    max_bytes: int = SQS_MAX_MESSAGE_BYTES,
    progress: Progress | None = None,
    client: SQSClient | None = None,
    warn: Callable[[str], None] | None = None,
    backoff: float = 0.1,
    home: Path | None = None,
    file_options: FileOptions = AUTO,
    explain: bool = False,
) -> BatchRecord:
    """Send every text of `data` (CSV or JSONL) to the queue; returns the batch's record.

    Ids: see `read_input`. `results_uri` is where the queue function writes (default
    `$MAAS_RESULTS`). `progress(texts sent, texts to send)` is called as SQS accepts them.
    `home`: where the batch is recorded (default `$MAAS_HOME`, then `.maas`). `explain`: the
    queue function explains every prediction (then at most MAX_EXPLAINED_TEXTS_PER_MESSAGE
    texts go in a message)."""
    if model:
        ModelRef.parse(model)  # refuse a malformed reference before sending anything
    if texts_per_message < 1:
        raise BatchError("texts per message must be at least 1")
    rows, assigned = read_input(data, text_column, id_column, file_options)
    client = client or sqs_client(queue_url)
    attributes = queue_attributes(client, queue_url)
    if max_bytes > int(attributes.get("MaximumMessageSize", max_bytes)):
        max_bytes = int(attributes["MaximumMessageSize"])

    record = BatchRecord(
        id=_new_batch_id(),
        queue_url=queue_url,
        results_uri=ResultSink(results_uri or ClientSettings.from_env().results).uri,
        input=str(Path(data).resolve()),
        texts=len(rows),
        messages={},
        rejected=[],
        ids_assigned=assigned,
        text_column=text_column,
        id_column=None if assigned else (id_column or DEFAULT_ID_COLUMN),
        model=model,
        max_receive_count=max_receive_count(attributes),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        home=home,
    )
    sendable = []
    for item in rows:
        problem = check_text(item.text, max_text_chars)
        if problem:
            record.rejected.append(
                {
                    "row": item.row,
                    "id": item.id,
                    "code": str(problem.code),
                    "message": f"the text {problem.message}",
                }
            )
        else:
            sendable.append(item)
    if record.rejected and warn:
        codes = Counter(r["code"] for r in record.rejected)
        warn(
            f"{counted(len(record.rejected), 'text')} not sent, the queue function would "
            f"refuse them ({', '.join(f'{c}: {n}' for c, n in sorted(codes.items()))}); "
            "they are reported as failed"
        )
    messages = list(
        pack(
            sendable,
            record.id,
            model=model,
            texts_per_message=(
                min(texts_per_message, MAX_EXPLAINED_TEXTS_PER_MESSAGE)
                if explain
                else texts_per_message
            ),
            max_bytes=max_bytes,
            explain=explain,
        )
    )
    where = {item_id: m.id for m in messages for item_id in m.ids}
    _write_ids(record.ids_path, rows, where)
    record.save()  # before sending: a submission that fails midway can still be followed

    sizes = {m.id: len(m.ids) for m in messages}
    total, done = len(sendable), 0

    def sent(message_id: str, _sqs_id: str) -> None:
        nonlocal done
        record.messages[message_id] = sizes[message_id]
        done += sizes[message_id]
        if progress:
            progress(done, total)

    if progress:
        progress(0, total)
    try:
        Sender(client, queue_url, max_bytes=max_bytes, backoff=backoff).send_all(
            ((m.id, m.body) for m in messages), sent
        )
    finally:
        record.complete = len(record.messages) == len(messages)
        record.save()
    return record


def _write_ids(path: Path, rows: Sequence[InputText], where: dict[str, str]) -> None:
    lines = [["row", "id", "message"]] + [[str(r.row), r.id, where.get(r.id, "")] for r in rows]
    with atomic_file(path) as handle:
        csv.writer(handle).writerows(lines)


def _read_ids(record: BatchRecord) -> list[dict[str, str]]:
    try:
        with record.ids_path.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))
    except FileNotFoundError:
        raise BatchError(f"batch {record.id} has lost its ids file {record.ids_path}") from None


# ---------------------------------------------------------------------------------- status
@dataclass(frozen=True)
class Count:
    messages: int = 0
    texts: int = 0


@dataclass
class BatchStatus:
    batch: str
    submitted: Count
    done: Count
    failed: Count
    pending: Count
    not_sent: int  # texts of a submission that stopped midway
    reasons: dict[str, int] = field(default_factory=dict)  # failure code -> texts failed
    # per message: "done", "failed" or "pending", and its latest failure record (if any)
    states: dict[str, str] = field(default_factory=dict, repr=False)
    failures: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def finished(self) -> bool:
        return self.pending.texts == 0 and self.not_sent == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "submitted": asdict(self.submitted),
            "done": asdict(self.done),
            "failed": asdict(self.failed),
            "pending": asdict(self.pending),
            "not_sent": self.not_sent,
            "reasons": self.reasons,
            "finished": self.finished,
        }


def status(
    batch_id: str,
    *,
    dlq_url: str | None = None,
    client: SQSClient | None = None,
    home: Path | None = None,
) -> BatchStatus:
    """Count the batch's messages and texts by state (see the module's docstring)."""
    record = BatchRecord.load(batch_id, home)
    sink = ResultSink(record.results_uri)
    prefix = f"{record.id}-"
    with_result = set(sink.list_results(prefix)) & record.messages.keys()
    failures = {
        key: doc
        for key in set(sink.list_failures(prefix)) & record.messages.keys() - with_result
        if (doc := sink.get_failure(key)) is not None
    }
    dead = dead_letter_ids(dlq_url, record.id, client or sqs_client(dlq_url)) if dlq_url else set()
    states: dict[str, str] = {}
    reasons: Counter[str] = Counter()
    for message_id, texts in record.messages.items():
        failure = failures.get(message_id)
        if message_id in with_result:
            states[message_id] = "done"
        elif message_id in dead or (failure and _final(failure, record.max_receive_count)):
            states[message_id] = "failed"
            reasons[failure["code"] if failure else "dead_letter"] += texts
        else:
            states[message_id] = "pending"
    for rejected in record.rejected:
        reasons[rejected["code"]] += 1

    def count(state: str) -> Count:
        ids = [m for m, s in states.items() if s == state]
        return Count(len(ids), sum(record.messages[m] for m in ids))

    failed = count("failed")
    sent_texts = sum(record.messages.values())
    return BatchStatus(
        batch=record.id,
        submitted=Count(len(record.messages), record.texts),
        done=count("done"),
        failed=Count(failed.messages, failed.texts + len(record.rejected)),
        pending=count("pending"),
        not_sent=record.texts - sent_texts - len(record.rejected),
        reasons=dict(reasons),
        states=states,
        failures=failures,
    )


def _final(failure: dict[str, Any], max_receive_count: int | None) -> bool:
    if not failure.get("retryable", True):
        return True
    return max_receive_count is not None and int(failure.get("attempt", 0)) >= max_receive_count


def dead_letter_ids(
    dlq_url: str, batch_id: str, client: SQSClient, wait_seconds: int = 1
) -> set[str]:
    """The message ids of a batch that sit in a dead-letter queue. Peeks: each message is
    received (hidden meanwhile, its receive count going up) and then made visible again."""
    seen: dict[str, str] = {}  # SQS message id -> receipt handle
    found: set[str] = set()
    while True:
        # a long poll asks every SQS server, not a sample
        received = receive(client, dlq_url, most=10, wait_seconds=wait_seconds, visibility=30)
        fresh = [m for m in received if m["MessageId"] not in seen]
        if not fresh:
            break
        for message in fresh:
            seen[message["MessageId"]] = message["ReceiptHandle"]
            message_id = _body_id(message["Body"])
            if message_id and message_id.startswith(f"{batch_id}-"):
                found.add(message_id)
    release_messages(client, dlq_url, list(seen.values()))
    return found


def _body_id(body: str) -> str | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    value = doc.get("id") if isinstance(doc, dict) else None
    return value if isinstance(value, str) else None


# --------------------------------------------------------------------------------- results
RESULT_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}


def collect(
    batch_id: str, *, dlq_url: str | None = None, home: Path | None = None
) -> tuple[list[dict[str, Any]], BatchStatus]:
    """One row per input text, in input order: `id`, `status` (done / failed / pending), and
    `label`, `score`, `scores`, `model`, `version` when done, or `error` (a code) and
    `reason` when failed (and, for pending texts, the latest retryable failure)."""
    record = BatchRecord.load(batch_id, home)
    report = status(batch_id, dlq_url=dlq_url, home=home)
    sink = ResultSink(record.results_uri)
    lines = _read_ids(record)
    in_message: dict[str, list[str]] = {}
    for line in lines:
        in_message.setdefault(line["message"], []).append(line["id"])
    predictions: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}  # text id -> (pred, model)
    for message_id, state in report.states.items():
        if state != "done":
            continue
        result = sink.get_result(message_id) or {}
        ids = result.get("ids") or in_message.get(message_id, [])  # ids: in the message's order
        for text_id, prediction in zip(ids, result.get("predictions", []), strict=False):
            predictions[text_id] = (prediction, result.get("model", {}))
    rejected = {r["id"]: r for r in record.rejected}
    rows: list[dict[str, Any]] = []
    for line in lines:
        text_id, message_id = line["id"], line["message"]
        row: dict[str, Any] = {"id": text_id}
        if text_id in predictions:
            prediction, model = predictions[text_id]
            row |= {
                "status": "done",
                "label": prediction["label"],
                "score": prediction["score"],
                "scores": prediction["scores"],
                "model": model.get("name"),
                "version": model.get("version"),
            }
        elif text_id in rejected:
            row |= {
                "status": "failed",
                "error": rejected[text_id]["code"],
                "reason": rejected[text_id]["message"],
            }
        elif message_id not in report.states:
            row |= {"status": "not_sent", "reason": "the submission stopped before sending it"}
        else:
            state = report.states[message_id]
            row["status"] = "failed" if state == "done" else state  # done, without this id: a bug
            failure = report.failures.get(message_id)
            if failure:
                row |= {"error": failure["code"], "reason": failure["message"]}
            elif row["status"] == "failed":
                row |= {"error": "dead_letter", "reason": "the message is in the dead-letter queue"}
        rows.append(row)
    return rows, report


def write_results(
    batch_id: str, out: str | Path, *, dlq_url: str | None = None, home: Path | None = None
) -> BatchStatus:
    """Write `collect`'s rows to `out`: JSON Lines (.jsonl) or CSV (.csv, one `score_<label>`
    column per label)."""
    target = Path(out)
    kind = RESULT_FORMATS.get(target.suffix.lower())
    if kind is None:
        raise BatchError(f"{target.name}: unknown format; use .jsonl or .csv")
    rows, report = collect(batch_id, dlq_url=dlq_url, home=home)
    if kind == "jsonl":
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        write_atomically(target, text)
        return report
    labels = list(dict.fromkeys(label for row in rows for label in row.get("scores", {})))
    columns = ["id", "status", "label", "score", *(f"score_{label}" for label in labels)]
    columns += ["model", "version", "error", "reason"]
    with atomic_file(target) as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            flat = {key: value for key, value in row.items() if key != "scores"}
            flat |= {f"score_{label}": p for label, p in row.get("scores", {}).items()}
            writer.writerow(flat)
    return report


# --------------------------------------------------------------------------------- redrive
@dataclass
class RedriveReport:
    moved: int = 0
    left: int = 0  # dead letters seen again after being moved (they failed again): not moved


def redrive(
    dlq_url: str,
    queue_url: str,
    *,
    client: SQSClient | None = None,
    limit: int | None = None,
    wait_seconds: int = 1,
    progress: Progress | None = None,
) -> RedriveReport:
    """Move dead letters back to the queue: receive, send, and delete from the DLQ only what
    the queue accepted. A message that comes back to the DLQ while this runs is left there.

    (AWS's own StartMessageMoveTask does the same server side; this works on any SQS API,
    moto included, and says what it moved.)"""
    client = client or sqs_client(queue_url)
    queue_attributes(client, queue_url)  # fail early on a wrong queue URL
    sender = Sender(client, queue_url)
    report = RedriveReport()
    resent: set[str] = set()  # SQS ids of the copies we sent
    while limit is None or report.moved < limit:
        want = 10 if limit is None else min(10, limit - report.moved)
        received = receive(client, dlq_url, most=want, wait_seconds=wait_seconds, visibility=60)
        again = [m for m in received if m["MessageId"] in resent]
        fresh = [m for m in received if m["MessageId"] not in resent]
        if again:
            report.left += len(again)
            release_messages(client, dlq_url, [m["ReceiptHandle"] for m in again])
        if not fresh:
            break
        handles = {m["MessageId"]: m["ReceiptHandle"] for m in fresh}
        moved: list[str] = []

        def sent(key: str, new_id: str, moved: list[str] = moved) -> None:
            moved.append(key)
            resent.add(new_id)
            if progress:
                progress(report.moved + len(moved), 0)

        try:
            sender.send_all(((m["MessageId"], m["Body"]) for m in fresh), sent)
        finally:
            delete_messages(client, dlq_url, [handles[key] for key in moved])
            kept = [m["ReceiptHandle"] for m in fresh if m["MessageId"] not in set(moved)]
            release_messages(client, dlq_url, kept)
            report.moved += len(moved)
        if again:
            break
    return report
