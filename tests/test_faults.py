"""Faults on the way through SQS: the queue function, run by the local event source mapping
(`maas.local.event_source`) against moto server on 127.0.0.1, with a short visibility timeout and a
redrive policy of two receives.

Every test ends in an exact accounting: each message submitted (by its id; by its SQS id when
its body has none) has exactly one result or is exactly once in the dead-letter queue, never
both; results + dead letters == texts submitted; and the sink wrote each result once (its
conditional put succeeded once per id), however often the message was delivered.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import open_store

from maas.errors import StoreError
from maas.local.event_source import EventSource, FunctionTimeout, create_queue
from maas.local.lambda_runtime import load_function
from maas.service.sink import ResultSink

REPO = Path(__file__).resolve().parent.parent
QUEUE_APP = REPO / "functions" / "queue" / "app.py"
MAX_RECEIVES = 2
LATE_BUCKET = f"late-models-{uuid.uuid4().hex[:8]}"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]


# ---------------------------------------------------------------------------- the stack
@dataclass
class Stack:
    sqs: Any
    queue: str
    dlq: str
    results: ResultSink
    app: ModuleType = field(init=False)
    source: EventSource = field(init=False)
    writes: Counter[str] = field(default_factory=Counter)  # id -> results written
    attempts: Counter[str] = field(default_factory=Counter)  # id -> put_result calls
    sent: dict[str, int] = field(default_factory=dict)  # message key -> texts

    def start_function(self) -> ModuleType:
        """A cold start of the queue function, its sink's writes counted."""
        self.app = load_function(QUEUE_APP)
        real_put = self.app.function.sink.put_result

        def counted_put(message_id: str, doc: dict[str, Any]) -> bool:
            self.attempts[message_id] += 1
            written: bool = real_put(message_id, doc)
            self.writes[message_id] += written
            return written

        self.app.function.sink.put_result = counted_put
        self.source = EventSource(self.queue, self.app.handler, batch_size=10, client=self.sqs)
        return self.app

    def send(self, *bodies: Any, texts: int | None = None) -> list[str]:
        """Send message bodies (dicts become JSON); returns their SQS message ids."""
        ids = []
        for body in bodies:
            raw = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
            message_id = self.sqs.send_message(QueueUrl=self.queue, MessageBody=raw)["MessageId"]
            self.sent[_key(raw, message_id)] = texts if texts is not None else _texts(body)
            ids.append(message_id)
        return ids

    def dead_letters(self) -> list[dict[str, Any]]:
        """Everything in the DLQ (received once, with a long visibility timeout)."""
        found: list[dict[str, Any]] = []
        while True:
            response = self.sqs.receive_message(
                QueueUrl=self.dlq, MaxNumberOfMessages=10, VisibilityTimeout=300
            )
            if not response.get("Messages"):
                return found
            found += response["Messages"]

    def account(self) -> tuple[list[str], list[str]]:
        """The exact accounting; returns (ids with a result, keys of the dead letters)."""
        assert self.source.backlog() == 0, "the queue is empty: nothing is still in flight"
        results = {i: self.results.get_result(i) or {} for i in self.results.list_results()}
        dead = [_key(m["Body"], m["MessageId"]) for m in self.dead_letters()]
        assert len(dead) == len(set(dead)), "each dead letter once"
        assert set(results).isdisjoint(dead), "a message has a result or is dead, not both"
        assert set(results) | set(dead) == set(self.sent), "every message is accounted for"
        result_texts = sum(len(doc["predictions"]) for doc in results.values())
        dead_texts = sum(self.sent[key] for key in dead)
        assert result_texts + dead_texts == sum(self.sent.values()), "texts add up"
        assert set(self.writes) == set(results), "every result was written through the sink"
        assert all(n == 1 for n in self.writes.values()), f"written twice: {self.writes}"
        return sorted(results), dead


def _key(body: str, sqs_message_id: str) -> str:
    """A message's id, as the queue function files it: the body's id, else the SQS id."""
    from maas.service.schemas import QueueMessage

    return QueueMessage.readable_keys(body)[0] or sqs_message_id


def _texts(body: Any) -> int:
    if isinstance(body, dict) and isinstance(body.get("texts"), list):
        return len(body["texts"])
    return 1


@pytest.fixture(scope="module")
def store_dir(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faults-store") / "store"
    open_store(root).publish(trained_model, "reviews", alias="production")
    return root


@pytest.fixture
def function_env(monkeypatch: pytest.MonkeyPatch, store_dir: Path, tmp_path: Path) -> None:
    monkeypatch.setenv("MAAS_STORE", str(store_dir))
    monkeypatch.setenv("MAAS_MODEL_NAME", "reviews")
    monkeypatch.setenv("MAAS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MAAS_MAX_TEXTS", "1000")  # the template's QueueMaxTextsPerMessage
    for name in ("MAAS_MODEL_ALIAS", "MAAS_MAX_TEXT_CHARS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def stack(
    moto_endpoint: str, s3_bucket: str, function_env: None, monkeypatch: pytest.MonkeyPatch
) -> Stack:
    import boto3

    results = f"s3://{s3_bucket}/batch"
    monkeypatch.setenv("MAAS_RESULTS", results)
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint)
    queue, dlq = create_queue(
        sqs, f"faults-{uuid.uuid4().hex[:8]}", visibility_timeout=1, max_receive_count=MAX_RECEIVES
    )
    return Stack(sqs, queue, dlq, ResultSink(results))


def good(n: int, prefix: str = "g") -> list[dict[str, Any]]:
    texts = ["房间很干净，服务也很好", "太差了，再也不来了", "早餐一般"]
    return [
        {"id": f"{prefix}-{i}", "batch": "faults", "texts": texts, "ids": ["a", "b", "c"]}
        for i in range(n)
    ]


# ------------------------------------------------------------------------------- faults
def test_poison_messages_end_in_the_dlq_with_their_reasons(stack: Stack) -> None:
    stack.start_function()
    stack.send(*good(3))
    poison = {
        "invalid_json": stack.send('{"id": "p-json", "texts": ["好"', texts=1)[0],
        "missing_text": stack.send({"id": "p-missing", "batch": "faults"})[0],
        "wrong_type": stack.send({"id": "p-type", "texts": "好"}, texts=1)[0],
        "ids_mismatch": stack.send({"id": "p-ids", "texts": ["好", "差"], "ids": ["1"]})[0],
        "too_many_texts": stack.send({"id": "p-many", "texts": ["好"] * 1001})[0],
        "text_too_long": stack.send({"id": "p-long", "text": "好" * 10_001})[0],
    }
    stack.source.drain(timeout=30)

    results, dead = stack.account()
    assert results == ["g-0", "g-1", "g-2"]
    assert (stack.results.get_result("g-0") or {})["ids"] == ["a", "b", "c"]
    keys = {"invalid_json": poison["invalid_json"]} | {  # an unreadable body: its SQS id
        code: f"p-{name}"
        for code, name in [
            ("missing_text", "missing"),
            ("wrong_type", "type"),
            ("ids_mismatch", "ids"),
            ("too_many_texts", "many"),
            ("text_too_long", "long"),
        ]
    }
    for code, key in keys.items():
        failure = stack.results.get_failure(key)
        assert failure is not None, key
        assert (failure["code"], failure["retryable"]) == (code, False)
        assert failure["attempt"] == MAX_RECEIVES, "SQS tried it maxReceiveCount times"
        assert failure["sqs_message_id"] == poison[code]
    assert sorted(dead) == sorted(keys.values()) == stack.results.list_failures()


def test_duplicate_deliveries_give_one_result_each(stack: Stack) -> None:
    stack.start_function()
    bodies = good(4, "d")
    stack.send(*bodies)
    stack.send(*bodies)  # a producer that retried its sends: every message twice
    # a poller that lost its deletes: the whole first batch comes back after the timeout
    first = stack.source.poll(delete=False)
    assert first is not None and first.failed == []
    stack.source.drain(timeout=30)

    results, dead = stack.account()
    assert results == ["d-0", "d-1", "d-2", "d-3"] and dead == []
    assert all(n >= 3 for n in stack.attempts.values()), "each id was processed 3+ times"
    redelivered = [c for i in stack.source.invocations[1:] for c in i.receive_counts]
    assert 2 in redelivered, "SQS itself redelivered the undeleted batch"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def late_store(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[[], None]]:
    """The model store on its own S3 endpoint, closed until `start()`; results go to a local
    directory (AWS_ENDPOINT_URL_S3 points every S3 client at the store's endpoint)."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # fail fast against the closed port
    monkeypatch.setenv("MAAS_STORE", f"s3://{LATE_BUCKET}/models")
    monkeypatch.setenv("MAAS_RESULTS", str(tmp_path / "results"))
    stack.results = ResultSink(tmp_path / "results")
    servers: list[ThreadedMotoServer] = []

    def start() -> None:
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        servers.append(server)

    yield start
    for server in servers:
        server.stop()


def test_model_store_down_at_cold_start_then_back_loses_nothing(
    stack: Stack, late_store: Callable[[], None], trained_model: Path
) -> None:
    import boto3

    stack.start_function()  # cannot warm the model: logged, not fatal
    stack.send(*good(4, "s"))
    first = stack.source.poll()
    assert first is not None and len(first.failed) == 4, "every message failed, none lost"
    failure = stack.results.get_failure("s-0")
    assert failure is not None and (failure["code"], failure["retryable"]) == ("store_error", True)

    late_store()  # the store comes back
    boto3.client("s3").create_bucket(Bucket=LATE_BUCKET)
    open_store(f"s3://{LATE_BUCKET}/models").publish(trained_model, "reviews", alias="production")
    stack.source.drain(timeout=30)

    results, dead = stack.account()
    assert results == ["s-0", "s-1", "s-2", "s-3"] and dead == []
    redelivered = [c for i in stack.source.invocations[1:] for c in i.receive_counts]
    assert redelivered == [2, 2, 2, 2], "each retried once, after the visibility timeout"


def test_sink_failing_for_part_of_a_batch_retries_only_those(stack: Stack) -> None:
    app = stack.start_function()
    counted_put = app.function.sink.put_result
    flaky = {"f-2", "f-5", "f-7"}

    def put_failing_once(message_id: str, doc: dict[str, Any]) -> bool:
        if message_id in flaky and stack.attempts[message_id] == 0:
            stack.attempts[message_id] += 1
            raise StoreError("S3 is throttling this prefix")
        result: bool = counted_put(message_id, doc)
        return result

    app.function.sink.put_result = put_failing_once
    sqs_ids = stack.send(*good(10, "f"))
    stack.source.drain(timeout=30)

    results, dead = stack.account()
    assert len(results) == 10 and dead == []
    first, *retries = stack.source.invocations
    assert set(first.failed) == {sqs_ids[int(i[2:])] for i in flaky}, "only those reported"
    retried = [m for invocation in retries for m in invocation.message_ids]
    assert sorted(retried) == sorted(first.failed), "and only those redelivered"
    assert all(set(i.receive_counts) == {2} for i in retries)


def test_interrupted_batch_redelivers_and_nothing_is_written_twice(stack: Stack) -> None:
    app = stack.start_function()
    real_predict = app.function.service.predict
    calls = Counter[str]()

    def predict_then_die(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 4:  # the 4th message of the first invocation: Lambda times out
            raise FunctionTimeout("Task timed out after 60.00 seconds")
        return real_predict(*args, **kwargs)

    app.function.service.predict = predict_then_die
    stack.send(*good(8, "t"))
    stack.source.drain(timeout=30)

    results, dead = stack.account()
    assert len(results) == 8 and dead == []
    interrupted, *after = stack.source.invocations
    assert interrupted.error and "FunctionTimeout" in interrupted.error
    assert sum(stack.writes.values()) == 8
    # nothing was deleted: all 8 came back, the 3 finished ones found their results
    assert sorted(m for i in after for m in i.message_ids) == sorted(interrupted.message_ids)
    assert sorted(n for n in stack.attempts.values()) == [1] * 5 + [2] * 3
