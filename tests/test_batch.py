"""`maas batch submit / status / results / redrive` end to end on the local stack: moto server
(SQS with a DLQ, S3 for results) on 127.0.0.1 and the real queue function run by the local
event source mapping. Plus the producer's rules: SQS limits, retried partial send failures,
and the CLI's one-line errors.
"""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import REVIEWS, open_store, sample_rows

from maas.cli import main
from maas.client import batch
from maas.client.sqs import Sender
from maas.core.limits import SQS_MAX_MESSAGE_BYTES
from maas.errors import MaasError
from maas.exits import EXIT_ERROR, EXIT_USAGE
from maas.local.event_source import EventSource, create_queue
from maas.local.lambda_runtime import load_function

REPO = Path(__file__).resolve().parent.parent
QUEUE_APP = REPO / "functions" / "queue" / "app.py"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]


# ------------------------------------------------------------------------------- helpers
def write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
        return path
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def reviews(n: int, seed: int = 3) -> list[dict[str, str]]:
    """n real reviews (repeated when n is larger than the sample)."""
    pool = sample_rows(REVIEWS, 1500, seed=seed)
    return [{"text": pool[i % len(pool)]["text"]} for i in range(n)]


def maas(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the CLI in process; its exit code, stdout and stderr (the function's logs, which
    Powertools writes to stdout, are dropped first)."""
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@dataclass
class Stack:
    sqs: Any
    queue: str
    dlq: str
    results: str
    store: Path
    app: ModuleType
    source: EventSource


@pytest.fixture(scope="module")
def store_dir(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("batch-store") / "store"
    open_store(root).publish(trained_model, "reviews", alias="production")
    return root


@pytest.fixture
def stack(
    moto_endpoint: str,
    s3_bucket: str,
    store_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Stack]:
    import boto3

    results = f"s3://{s3_bucket}/batch"
    for name, value in {
        "MAAS_HOME": str(tmp_path / "home"),
        "MAAS_PROGRESS": "1",
        "MAAS_STORE": str(store_dir),
        "MAAS_MODEL_NAME": "reviews",
        "MAAS_CACHE_DIR": str(tmp_path / "cache"),
        "MAAS_RESULTS": results,
        "MAAS_MAX_TEXTS": "1000",  # the template's QueueMaxTextsPerMessage
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("MAAS_MODEL_ALIAS", "MAAS_MAX_TEXT_CHARS"):
        monkeypatch.delenv(name, raising=False)
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint)
    queue, dlq = create_queue(
        sqs, f"batch-{uuid.uuid4().hex[:8]}", visibility_timeout=1, max_receive_count=2
    )
    app = load_function(QUEUE_APP)
    yield Stack(
        sqs, queue, dlq, results, store_dir, app, EventSource(queue, app.handler, client=sqs)
    )


# -------------------------------------------------------------------------- end to end
def test_submit_status_results_end_to_end(
    stack: Stack,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAAS_PROGRESS", "1")  # the bar a terminal would show
    rows = [{"id": f"r{i:04d}", **row} for i, row in enumerate(reviews(1200))]
    rows[5]["text"] = "   "  # the function would refuse these: not sent, reported failed
    rows[9]["text"] = "好" * 10_001
    data = write_rows(tmp_path / "input.csv", rows)

    code, out, err = maas(capsys, "batch", "submit", str(data), "--queue", stack.queue)
    assert code == 0, err
    batch_id = out.strip()
    assert out == f"{batch_id}\n", "stdout is the batch id, one line"
    assert "sending" in err and "1198/1198" in err, "a progress bar on stderr"
    assert "2 texts not sent" in err and "empty_text: 1, text_too_long: 1" in err
    record = batch.BatchRecord.load(batch_id)
    assert record.results_uri == stack.results and record.max_receive_count == 2
    assert len(record.messages) == 2 and sum(record.messages.values()) == 1198

    code, out, _ = maas(capsys, "batch", "status", batch_id, "--json")
    assert json.loads(out)["pending"] == {"messages": 2, "texts": 1198}

    stack.source.drain(timeout=30)
    code, out, _ = maas(capsys, "batch", "status", batch_id, "--json")
    report = json.loads(out)
    assert (report["submitted"], report["done"], report["failed"], report["pending"]) == (
        {"messages": 2, "texts": 1200},
        {"messages": 2, "texts": 1198},
        {"messages": 0, "texts": 2},
        {"messages": 0, "texts": 0},
    )
    assert report["reasons"] == {"empty_text": 1, "text_too_long": 1} and report["finished"]
    code, out, _ = maas(capsys, "batch", "status", batch_id)
    assert out.splitlines()[1:] == [
        "            messages     texts",
        "submitted          2      1200",
        "done               2      1198",
        "failed             0         2",
        "pending            0         0",
        "  failed texts, empty_text: 1",
        "  failed texts, text_too_long: 1",
    ]

    # results: one row per input text, in input order, joined on the input's ids
    code, _, err = maas(capsys, "batch", "results", batch_id, "--out", str(tmp_path / "out.jsonl"))
    assert code == 0 and "1198 done, 2 failed, 0 pending" in err
    got = read_jsonl(tmp_path / "out.jsonl")
    assert [r["id"] for r in got] == [r["id"] for r in rows]
    assert got[5] == {
        "id": "r0005",
        "status": "failed",
        "error": "empty_text",
        "reason": "the text is empty or only whitespace",
    }
    assert got[9]["error"] == "text_too_long"
    classifier = open_store(stack.store).fetch("reviews", tmp_path / "cache").open()
    sent = [r for r in rows if r["id"] not in ("r0005", "r0009")]
    predictions = classifier.predict([r["text"] for r in sent])
    expected = dict(zip([r["id"] for r in sent], predictions, strict=True))
    for row in got:
        if row["status"] == "done":
            assert row["label"] == expected[row["id"]].label, row["id"]
            assert row["score"] == pytest.approx(expected[row["id"]].score, abs=1e-5)
            assert (row["model"], row["version"]) == ("reviews", "1")
    assert sum(r["status"] == "done" for r in got) == 1198

    code, _, _ = maas(capsys, "batch", "results", batch_id, "--out", str(tmp_path / "out.csv"))
    with (tmp_path / "out.csv").open(encoding="utf-8", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0]) == [
        "id", "status", "label", "score", "score_negative", "score_positive",
        "model", "version", "error", "reason",
    ]  # fmt: skip
    assert [r["id"] for r in table] == [r["id"] for r in got]
    assert [r["label"] for r in table] == [r.get("label", "") for r in got]


def test_assigned_ids_are_row_numbers_written_back(
    stack: Stack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = write_rows(tmp_path / "no-ids.jsonl", reviews(30))
    code, out, err = maas(capsys, "batch", "submit", str(data), "--queue", stack.queue)
    assert code == 0, err
    batch_id = out.strip()
    ids_file = tmp_path / "home" / "batches" / f"{batch_id}.ids.csv"
    assert f"ids are its row numbers, written to {ids_file}" in err
    with ids_file.open(encoding="utf-8", newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [(r["row"], r["id"]) for r in written] == [(str(i), str(i)) for i in range(1, 31)]
    assert {r["message"] for r in written} == {f"{batch_id}-000001"}

    stack.source.drain(timeout=30)
    assert maas(capsys, "batch", "results", batch_id, "--out", str(tmp_path / "o.jsonl"))[0] == 0
    got = read_jsonl(tmp_path / "o.jsonl")
    assert [r["id"] for r in got] == [str(i) for i in range(1, 31)]
    assert {r["status"] for r in got} == {"done"}


def test_redrive_after_a_fix(
    stack: Stack, capsys: pytest.CaptureFixture[str], tmp_path: Path, trained_model: Path
) -> None:
    rows = [{"id": f"x{i}", **row} for i, row in enumerate(reviews(50))]
    data = write_rows(tmp_path / "input.csv", rows)
    args = ("batch", "submit", str(data), "--queue", stack.queue, "--model", "later")
    code, out, err = maas(capsys, *args, "--texts-per-message", "20")
    assert code == 0, err
    batch_id = out.strip()

    stack.source.drain(timeout=30)  # no model named "later": each message fails, then dead
    code, out, _ = maas(capsys, "batch", "status", batch_id, "--json", "--dlq", stack.dlq)
    report = json.loads(out)
    assert report["failed"] == {"messages": 3, "texts": 50}
    assert report["reasons"] == {"model_not_found": 50}
    maas(capsys, "batch", "results", batch_id, "--out", str(tmp_path / "failed.jsonl"))
    failed = read_jsonl(tmp_path / "failed.jsonl")
    assert {(r["status"], r["error"]) for r in failed} == {("failed", "model_not_found")}

    # the fix: publish the model; then move the dead letters back and let them run
    open_store(stack.store).publish(trained_model, "later")
    code, out, err = maas(capsys, "batch", "redrive", "--dlq", stack.dlq, "--queue", stack.queue)
    assert (code, out) == (0, "3\n") and "moved 3 messages" in err
    stack.source.drain(timeout=30)

    code, out, _ = maas(capsys, "batch", "status", batch_id, "--json", "--dlq", stack.dlq)
    report = json.loads(out)
    assert report["done"] == {"messages": 3, "texts": 50} and report["finished"]
    maas(capsys, "batch", "results", batch_id, "--out", str(tmp_path / "done.jsonl"))
    done = read_jsonl(tmp_path / "done.jsonl")
    assert [r["id"] for r in done] == [r["id"] for r in rows]
    assert {(r["status"], r["model"]) for r in done} == {("done", "later")}
    assert maas(capsys, "batch", "redrive", "--dlq", stack.dlq, "--queue", stack.queue)[1] == "0\n"


# ------------------------------------------------------------------------ SQS's limits
class RecordingSQS:
    """A real SQS client whose SendMessageBatch calls are recorded; the first `fail` calls
    report their first two entries as failed (as SQS does under load: a 200 with `Failed`)."""

    def __init__(self, client: Any, fail: int = 0, sender_fault: bool = False) -> None:
        self.client = client
        self.calls: list[list[dict[str, Any]]] = []
        self.fail = fail
        self.sender_fault = sender_fault

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:
        self.calls.append(Entries)
        failing, passing = (Entries[:2], Entries[2:]) if self.fail else ([], Entries)
        self.fail = max(0, self.fail - 1)
        sent = self.client.send_message_batch(QueueUrl=QueueUrl, Entries=passing) if passing else {}
        response: dict[str, Any] = {"Successful": sent.get("Successful", []), "Failed": []}
        for entry in failing:
            response["Failed"].append(
                {"Id": entry["Id"], "SenderFault": self.sender_fault, "Code": "InternalError"}
            )
        return response


def bodies_in_queue(stack: Stack) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        messages = stack.sqs.receive_message(
            QueueUrl=stack.queue, MaxNumberOfMessages=10, VisibilityTimeout=300
        ).get("Messages", [])
        if not messages:
            return found
        found += [json.loads(m["Body"]) for m in messages]


def test_a_large_input_is_split_within_sqs_limits(stack: Stack, tmp_path: Path) -> None:
    rows = [{"id": f"big-{i}", **row} for i, row in enumerate(reviews(3000, seed=11))]
    data = write_rows(tmp_path / "big.csv", rows)
    assert data.stat().st_size > 2 * SQS_MAX_MESSAGE_BYTES
    client: Any = RecordingSQS(stack.sqs)
    record = batch.submit(data, stack.queue, client=client, texts_per_message=1500)

    bodies = [entry["MessageBody"] for call in client.calls for entry in call]
    sizes = [len(body.encode("utf-8")) for body in bodies]
    assert all(size <= SQS_MAX_MESSAGE_BYTES for size in sizes)
    assert min(sizes[:-1]) > 0.98 * SQS_MAX_MESSAGE_BYTES, "packed up to the limit"
    for call in client.calls:
        assert len(call) <= 10
        assert sum(len(e["MessageBody"].encode("utf-8")) for e in call) <= SQS_MAX_MESSAGE_BYTES
    messages = sorted(bodies_in_queue(stack), key=lambda m: m["id"])
    assert len(messages) == len(record.messages) == len(bodies) == 3
    assert all(len(m["texts"]) <= 1500 for m in messages)
    assert [m["id"] for m in messages] == [
        f"{record.id}-{n:06d}" for n in range(1, len(bodies) + 1)
    ]
    assert [i for m in messages for i in m["ids"]] == [r["id"] for r in rows], "in input order"
    assert [t for m in messages for t in m["texts"]] == [r["text"] for r in rows]
    assert {m["batch"] for m in messages} == {record.id}


def test_texts_per_message_is_capped(stack: Stack, tmp_path: Path) -> None:
    data = write_rows(tmp_path / "short.csv", [{"text": "好"}] * 2500)
    record = batch.submit(data, stack.queue)
    assert list(record.messages.values()) == [1000, 1000, 500]


def test_partial_send_failures_are_retried(stack: Stack, tmp_path: Path) -> None:
    data = write_rows(tmp_path / "input.csv", [{"text": f"第{i}条 很好"} for i in range(300)])
    client: Any = RecordingSQS(stack.sqs, fail=3)
    record = batch.submit(data, stack.queue, client=client, texts_per_message=10, backoff=0.01)
    assert record.complete and len(record.messages) == 30
    assert [len(call) for call in client.calls] == [10, 2, 2, 2, 10, 10], "the failed two, 3 times"
    messages = bodies_in_queue(stack)
    assert sorted(m["id"] for m in messages) == sorted(record.messages), "each sent once"


def test_the_sender_backs_off_and_gives_up(stack: Stack) -> None:
    sleeps: list[float] = []
    recording: Any = RecordingSQS(stack.sqs, fail=99)
    sender = Sender(recording, stack.queue, sleep=sleeps.append)
    sent: list[str] = []
    with pytest.raises(MaasError, match="2 messages still failing after 8 attempts"):
        sender.send_all([(f"m{i}", "{}") for i in range(5)], lambda key, _: sent.append(key))
    assert sent == ["m2", "m3", "m4"] and sender.retried == 2 * 7
    assert len(sleeps) == 7 and sleeps[-1] > sleeps[0] and max(sleeps) <= 5.0


def test_a_refused_message_is_not_retried(stack: Stack, tmp_path: Path) -> None:
    data = write_rows(tmp_path / "input.csv", [{"text": "好"}] * 30)
    client: Any = RecordingSQS(stack.sqs, fail=1, sender_fault=True)
    with pytest.raises(MaasError, match=r"refused message .*-000001: InternalError"):
        batch.submit(data, stack.queue, client=client, texts_per_message=2)
    assert len(client.calls) == 1
    (path,) = (tmp_path / "home" / "batches").glob("*.json")
    record = json.loads(path.read_text())
    assert record["complete"] is False and len(record["messages"]) == 8, "what was sent is known"


# ------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    ("rows", "argv", "message"),
    [
        (None, [], "no such file"),
        ([{"body": "好"}], [], "no 'text' column (found: body); name it with --text-column"),
        ([{"id": "a", "text": "好"}, {"id": "a", "text": "差"}], [], "id 'a' already appears"),
        ([{"id": "", "text": "好"}], [], "empty 'id'"),
        ([{"text": "好"}], ["--id-column", "key"], "no 'key' column for ids"),
        ([{"text": "好"}], ["--model", "Bad Name"], "model"),
        ([{"text": "好"}], ["--texts-per-message", "0"], "at least 1"),
        ([{"text": "好"}], ["--queue-suffix"], "NonExistentQueue"),
    ],
)
def test_submit_refuses_bad_input_in_one_line(
    stack: Stack,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    rows: list[dict[str, str]] | None,
    argv: list[str],
    message: str,
) -> None:
    data = tmp_path / "input.csv"
    if rows is not None:
        write_rows(data, rows)
    queue = stack.queue
    if argv == ["--queue-suffix"]:
        queue, argv = stack.queue + "-missing", []
    code, out, err = maas(capsys, "batch", "submit", str(data), "--queue", queue, *argv)
    # a queue that does not exist is SQS's answer (could not be done); the rest are inputs
    assert (code, out) == (EXIT_ERROR if "Queue" in message else EXIT_USAGE, "")
    assert err.startswith("maas: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not list((tmp_path / "home").glob("batches/*.json")), "no batch recorded"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["status", "nope"], "'nope' is not a batch id"),
        (["status", "20260101T000000-abcdef"], "no batch 20260101T000000-abcdef in"),
        (["results", "20260101T000000-abcdef", "--out", "x.jsonl"], "no batch"),
        (["redrive", "--dlq", "http://127.0.0.1:1/1/none", "--queue", "QUEUE"], "cannot"),
    ],
)
def test_other_commands_fail_in_one_line(
    stack: Stack, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    argv = [stack.queue if arg == "QUEUE" else arg for arg in argv]
    code, out, err = maas(capsys, "batch", *argv)
    assert (code, out) == (EXIT_ERROR if argv[0] == "redrive" else EXIT_USAGE, "")
    assert err.startswith("maas: error: ") and err.count("\n") == 1 and message in err, err


def test_results_needs_a_known_format(
    stack: Stack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = write_rows(tmp_path / "input.csv", [{"text": "好"}])
    batch_id = maas(capsys, "batch", "submit", str(data), "--queue", stack.queue)[1].strip()
    code, _, err = maas(capsys, "batch", "results", batch_id, "--out", str(tmp_path / "r.txt"))
    assert code == EXIT_USAGE and err == "maas: error: r.txt: unknown format; use .jsonl or .csv\n"


def test_submit_work_status_results_with_the_cli_alone(
    stack: Stack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """What a person types on a laptop with a local SQS: create a queue, submit, `batch work`
    (the real queue function as the event source mapping runs it), status, results. Every
    text ends with a result or a recorded failure; a hopeless message ends in the DLQ."""
    name = f"cli-{uuid.uuid4().hex[:8]}"
    code, out, err = maas(
        capsys, "batch", "create-queue", name, "--visibility-timeout", "1", "--max-receives", "2"
    )
    assert code == 0, err
    queue = out.strip()
    dlq = err.split("dead-letter queue: ")[1].split()[0]
    assert queue.endswith(f"/{name}") and dlq.endswith(f"/{name}-dlq")

    rows = [{"id": f"t{i:03d}", **row} for i, row in enumerate(reviews(120))]
    rows[7]["text"] = "\u3000"
    data = write_rows(tmp_path / "texts.csv", rows)
    code, good, err = maas(capsys, "batch", "submit", str(data), "--queue", queue)
    assert code == 0, err
    code, hopeless, err = maas(
        capsys, "batch", "submit", str(data), "--queue", queue, "--model", "nope"
    )
    assert code == 0, err

    code, _, err = maas(capsys, "batch", "work", "--queue", queue)
    assert code == 0, err
    # both messages in one invocation, then the hopeless one again at its second receive
    assert "2 invocations, 3 messages delivered: 1 succeeded, 2 failed" in err, err

    code, out, _ = maas(capsys, "batch", "status", good.strip(), "--json")
    report = json.loads(out)
    assert report["done"] == {"messages": 1, "texts": 119} and report["finished"]
    assert report["failed"]["texts"] == 1 and report["reasons"] == {"empty_text": 1}
    code, out, _ = maas(capsys, "batch", "status", hopeless.strip(), "--dlq", dlq, "--json")
    report = json.loads(out)
    assert report["failed"] == {"messages": 1, "texts": 120} and report["finished"]
    assert report["pending"] == {"messages": 0, "texts": 0}

    for batch_id, dead in ((good.strip(), None), (hopeless.strip(), dlq)):
        out_file = tmp_path / f"{batch_id}.jsonl"
        argv = ["batch", "results", batch_id, "--out", str(out_file)]
        assert maas(capsys, *argv, *(["--dlq", dead] if dead else []))[0] == 0
        got = read_jsonl(out_file)
        assert [r["id"] for r in got] == [r["id"] for r in rows], "one row per input text"
        assert all(r["status"] in ("done", "failed") for r in got)
        assert all(r["status"] == "done" or r["error"] for r in got), "a failure says why"
    got = read_jsonl(tmp_path / f"{hopeless.strip()}.jsonl")
    assert {r["error"] for r in got if r["id"] != "t007"} == {"model_not_found"}
    dead_letters = stack.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)
    assert len(dead_letters.get("Messages", [])) == 1
