"""The queue function (functions/queue/app.py) called with SQS events, and its results sink.

Every test ends in an exact accounting: each message has a result or is named in
`batchItemFailures` with its reason in failures/, and no message has two results.
"""

# Chinese text uses full-width punctuation; it is data, not a typo:

from __future__ import annotations

import copy
import hashlib
import io
import json
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import open_store

from maas.errors import StoreError
from maas.local.lambda_runtime import lambda_context, load_event, load_function
from maas.service.sink import ResultSink

REPO = Path(__file__).resolve().parent.parent
EVENTS = REPO / "events" / "sqs"

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


# ---------------------------------------------------------------------------- helpers
def event(name: str) -> dict[str, Any]:
    return load_event("sqs", name)


def batch(*bodies: Any, receive_count: int = 1) -> dict[str, Any]:
    """An SQS event shaped like the committed ones, with these message bodies."""
    (template, *_) = event("good-batch")["Records"]
    records = []
    for body in bodies:
        record = copy.deepcopy(template)
        record["messageId"] = str(uuid.uuid4())
        record["body"] = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
        record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
        records.append(record)
    return {"Records": records}


def redelivered(ev: dict[str, Any], only: set[str] | None = None) -> dict[str, Any]:
    """The same messages received again (SQS keeps message ids across receives)."""
    again = copy.deepcopy(ev)
    again["Records"] = [r for r in again["Records"] if only is None or r["messageId"] in only]
    for record in again["Records"]:
        count = int(record["attributes"]["ApproximateReceiveCount"]) + 1
        record["attributes"]["ApproximateReceiveCount"] = str(count)
    return again


def failed_ids(response: dict[str, Any]) -> set[str]:
    return {item["itemIdentifier"] for item in response["batchItemFailures"]}


def message_ids(ev: dict[str, Any]) -> list[str]:
    return [r["messageId"] for r in ev["Records"]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def store_dir(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("queue-store") / "store"
    open_store(root).publish(trained_model, "reviews", alias="production")
    return root


@pytest.fixture(params=["local", "s3"])
def results_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The results sink: a local directory, or S3 on moto server (real HTTP on 127.0.0.1)."""
    if request.param == "local":
        return str(tmp_path / "results")
    return f"s3://{request.getfixturevalue('s3_bucket')}/batch"


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, store_dir: Path, tmp_path: Path, results_uri: str
) -> pytest.MonkeyPatch:
    monkeypatch.setenv("MAAS_STORE", str(store_dir))
    monkeypatch.setenv("MAAS_MODEL_NAME", "reviews")
    monkeypatch.setenv("MAAS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MAAS_RESULTS", results_uri)
    for name in ("MAAS_MODEL_ALIAS", "MAAS_MAX_TEXTS", "MAAS_MAX_TEXT_CHARS"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def app(env: pytest.MonkeyPatch) -> ModuleType:
    return load_function("queue")


@pytest.fixture
def sink(results_uri: str) -> ResultSink:
    return ResultSink(results_uri)


@pytest.fixture
def handle(app: ModuleType) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def run(ev: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = app.handler(ev, lambda_context())
        return response

    return run


Handle = Callable[[dict[str, Any]], dict[str, Any]]


# ------------------------------------------------------------------------ the committed events
def test_good_batch_writes_one_result_per_message(handle: Handle, sink: ResultSink) -> None:
    ev = event("good-batch")
    assert handle(ev) == {"batchItemFailures": []}
    assert sink.list_results() == ["review-0001", "review-0002", "review-0003"]
    assert sink.list_failures() == []

    first = sink.get_result("review-0001")
    assert first is not None
    assert set(first) == {
        "id", "batch", "model", "predictions", "sqs_message_id", "processed_at", "body_sha256"
    }  # fmt: skip
    body = ev["Records"][0]["body"].encode()
    assert first["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert first["id"] == "review-0001" and first["batch"] == "demo"
    assert first["model"] == {"name": "reviews", "version": "1"}
    assert first["sqs_message_id"] == ev["Records"][0]["messageId"]
    labels = {
        message_id: [p["label"] for p in (sink.get_result(message_id) or {})["predictions"]]
        for message_id in sink.list_results()
    }
    assert labels == {
        "review-0001": ["positive"],
        "review-0002": ["negative", "positive"],  # one message, one predict call, in order
        "review-0003": ["negative"],
    }
    prediction = first["predictions"][0]
    assert set(prediction["scores"]) == {"negative", "positive"}
    assert prediction["score"] == prediction["scores"]["positive"] > 0.5


def test_mixed_batch_names_exactly_the_poison_messages(handle: Handle, sink: ResultSink) -> None:
    ev = event("mixed-batch")
    _, bad_json, no_text, _ = message_ids(ev)
    response = handle(ev)
    assert failed_ids(response) == {bad_json, no_text}
    assert sink.list_results() == ["review-0001", "review-0104"]

    # a body that is not JSON has no readable id: its failure is filed under the SQS id
    assert sink.list_failures() == sorted([bad_json, "review-0103"])
    unreadable = sink.get_failure(bad_json)
    assert unreadable is not None
    assert (unreadable["code"], unreadable["id"], unreadable["retryable"]) == (
        "invalid_json",
        None,
        False,
    )
    missing = sink.get_failure("review-0103")
    assert missing is not None
    assert missing["code"] == "missing_text" and missing["batch"] == "demo"
    assert missing["sqs_message_id"] == no_text and missing["attempt"] == 1


def test_a_redelivered_batch_produces_no_second_result(handle: Handle, sink: ResultSink) -> None:
    ev = event("mixed-batch")
    first_failures = failed_ids(handle(ev))
    before = {i: sink.get_result(i) for i in sink.list_results()}

    again = redelivered(ev)  # e.g. the function timed out after writing some results
    assert failed_ids(handle(again)) == first_failures
    after = {i: sink.get_result(i) for i in sink.list_results()}
    assert after == before, "the first result stands, byte for byte"

    failure = sink.get_failure("review-0103")
    assert failure is not None and failure["attempt"] == 2, "the failure record is the latest"


def test_a_duplicate_id_within_one_batch_counts_once(handle: Handle, sink: ResultSink) -> None:
    ev = batch({"id": "dup-1", "text": "很好"}, {"id": "dup-1", "text": "很好"})
    assert handle(ev) == {"batchItemFailures": []}
    assert sink.list_results() == ["dup-1"]
    result = sink.get_result("dup-1")
    assert result is not None and result["sqs_message_id"] == ev["Records"][0]["messageId"]


def test_an_id_reused_by_a_different_message_is_a_recorded_failure(
    handle: Handle, sink: ResultSink
) -> None:
    """The same id with the same body is a redelivery (one result); with another body it is
    a collision: the first result stands, the second message fails for good, with a record
    under its SQS id, and is reported so SQS hands it to the DLQ. Nothing vanishes."""
    first = batch({"id": "c-1", "text": "很好"})
    assert handle(first) == {"batchItemFailures": []}
    assert handle(redelivered(first)) == {"batchItemFailures": []}  # same body: a duplicate
    second = batch({"id": "c-1", "text": "太差了"})
    assert failed_ids(handle(second)) == set(message_ids(second))
    assert sink.list_results() == ["c-1"]
    result = sink.get_result("c-1")
    assert result is not None and result["sqs_message_id"] == message_ids(first)[0]
    (sqs_id,) = message_ids(second)
    failure = sink.get_failure(sqs_id)
    assert failure is not None
    assert (failure["code"], failure["retryable"], failure["id"]) == ("id_conflict", False, "c-1")
    assert "different message" in failure["message"]
    assert sink.get_failure("c-1") is None, "the first message's own record is untouched"


@pytest.mark.parametrize(
    "body",
    [
        '{"id": "deep-1", "text": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"id": "deep-1", "text": ' + "9" * 5000 + "}",
        "[" * 100_000,
    ],
)
def test_hostile_json_fails_with_a_record(handle: Handle, sink: ResultSink, body: str) -> None:
    ev = batch(body)
    assert failed_ids(handle(ev)) == set(message_ids(ev))
    failures = sink.list_failures()
    assert len(failures) == 1, "a record, filed under the id when it could be read"
    failure = sink.get_failure(failures[0])
    assert failure is not None and failure["retryable"] is False
    assert failure["code"] in ("invalid_json", "wrong_type")


# ------------------------------------------------------------------------------- poison
@pytest.mark.parametrize(
    ("body", "code", "key"),
    [
        ('{"id": "p-1", "text": "好"', "invalid_json", None),
        ("", "invalid_json", None),
        ('["p-1", "好"]', "wrong_type", None),
        ({"id": "p-1"}, "missing_text", "p-1"),
        ({"text": "好"}, "missing_id", None),
        ({"id": "p-1", "text": 5}, "wrong_type", "p-1"),
        ({"id": "p-1", "texts": "好"}, "wrong_type", "p-1"),
        ({"id": "p-1", "text": "  "}, "empty_text", "p-1"),
        ({"id": "p-1", "text": "好" * 10_001}, "text_too_long", "p-1"),
        ({"id": "p-1", "texts": ["好"] * 1001}, "too_many_texts", "p-1"),
        ({"id": "p-1", "text": "好", "texts": ["好"]}, "both_text_and_texts", "p-1"),
        ({"id": "p-1", "txt": "好"}, "unknown_field", "p-1"),
        ({"id": "../etc/passwd", "text": "好"}, "invalid_id", None),
        ({"id": "a/b", "text": "好"}, "invalid_id", None),
        ({"id": 7, "text": "好"}, "wrong_type", None),
        ({"id": "p-1", "text": "好", "model": "bad name"}, "invalid_model_reference", "p-1"),
        ({"id": "p-1", "text": "好", "model": "no-such-model"}, "model_not_found", "p-1"),
        ({"id": "p-1", "text": "好", "model": "reviews:7"}, "model_not_found", "p-1"),
        ({"id": "p-1", "text": "好", "batch": "a b"}, "invalid_batch", "p-1"),
    ],
)
def test_poison_messages_fail_with_their_reason(
    handle: Handle, sink: ResultSink, body: Any, code: str, key: str | None
) -> None:
    ev = batch({"id": "ok-1", "text": "很好"}, body)
    assert failed_ids(handle(ev)) == {ev["Records"][1]["messageId"]}
    assert sink.list_results() == ["ok-1"]
    failure = sink.get_failure(key or ev["Records"][1]["messageId"])
    assert failure is not None
    assert failure["code"] == code and failure["retryable"] is False
    assert failure["sqs_message_id"] == ev["Records"][1]["messageId"]


def test_a_batch_of_only_poison_reports_every_message(handle: Handle, sink: ResultSink) -> None:
    ev = batch("not json", {"id": "p-2"}, {"id": "p-3", "text": ""})
    assert failed_ids(handle(ev)) == set(message_ids(ev)), "not an invocation error"
    assert sink.list_results() == [] and len(sink.list_failures()) == 3


def test_messages_may_name_their_model(handle: Handle, sink: ResultSink) -> None:
    ev = batch(
        {"id": "m-1", "text": "很好", "model": "reviews:1"},
        {"id": "m-2", "text": "很好", "model": "reviews@production"},
        {"id": "m-3", "text": "很好", "model": "reviews"},
    )
    assert handle(ev) == {"batchItemFailures": []}
    assert {(sink.get_result(i) or {})["model"]["version"] for i in ("m-1", "m-2", "m-3")} == {"1"}


def test_per_message_limits_come_from_the_environment(
    env: pytest.MonkeyPatch, sink: ResultSink
) -> None:
    env.setenv("MAAS_MAX_TEXTS", "1000")
    app = load_function("queue")
    ev = batch({"id": "big-1", "texts": ["很好"] * 1000}, {"id": "big-2", "texts": ["很好"] * 1001})
    assert failed_ids(app.handler(ev, lambda_context())) == {ev["Records"][1]["messageId"]}
    result = sink.get_result("big-1")
    assert result is not None and len(result["predictions"]) == 1000
    failure = sink.get_failure("big-2")
    assert failure is not None and failure["details"]["limit"] == 1000


def test_logs_carry_ids_and_codes_never_texts(
    app: ModuleType,
    handle: Handle,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = io.StringIO()
    monkeypatch.setattr(app.function.logger.registered_handler, "stream", log)
    secret = "这是一条非常私密的评论内容，绝对不能出现在日志里"
    handle(batch({"id": "s-1", "text": secret}, {"id": "s-2", "texts": [secret, 5]}, secret))
    assert secret[:4] not in log.getvalue()
    assert secret[:4] not in caplog.text, "nor in any library's log (tracebacks included)"
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    failed = [line for line in lines if line["message"] == "message failed"]
    assert [(line.get("id"), line["code"]) for line in failed] == [
        ("s-2", "wrong_type"),
        (None, "invalid_json"),
    ]
    assert lines[-1]["message"] == "batch done" and lines[-1]["failed"] == 2


# ---------------------------------------------------------------------------- faults
def test_the_sink_failing_for_some_messages_retries_only_those(
    app: ModuleType, handle: Handle, sink: ResultSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_put = app.function.sink.put_result

    def flaky_put(message_id: str, doc: dict[str, Any]) -> bool:
        if message_id in ("f-2", "f-4"):
            raise StoreError("S3 is throttling this prefix")
        result: bool = real_put(message_id, doc)
        return result

    monkeypatch.setattr(app.function.sink, "put_result", flaky_put)
    ev = batch(*({"id": f"f-{n}", "text": "很好"} for n in range(1, 6)))
    failed = failed_ids(handle(ev))
    assert failed == {ev["Records"][1]["messageId"], ev["Records"][3]["messageId"]}
    assert sink.list_results() == ["f-1", "f-3", "f-5"]
    failure = sink.get_failure("f-2")
    assert failure is not None and failure["code"] == "store_error" and failure["retryable"]

    # S3 recovers; SQS redelivers those
    monkeypatch.setattr(app.function.sink, "put_result", real_put)
    assert handle(redelivered(ev, only=failed)) == {"batchItemFailures": []}
    assert sink.list_results() == ["f-1", "f-2", "f-3", "f-4", "f-5"]


def test_a_sink_that_is_down_still_reports_every_message(
    app: ModuleType, handle: Handle, sink: ResultSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*args: Any, **kwargs: Any) -> None:
        raise StoreError("cannot reach the results bucket")

    monkeypatch.setattr(app.function.sink.backend, "write", down)
    log = io.StringIO()
    monkeypatch.setattr(app.function.logger.registered_handler, "stream", log)
    ev = batch({"id": "d-1", "text": "很好"}, "poison")
    assert failed_ids(handle(ev)) == set(message_ids(ev)), "nothing is dropped"
    assert log.getvalue().count("could not record the failure") == 2


def test_an_unexpected_error_is_a_retryable_failure(
    app: ModuleType, handle: Handle, sink: ResultSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("interpreter exploded")

    monkeypatch.setattr(app.function.service, "predict", broken)
    ev = batch({"id": "u-1", "text": "很好"})
    assert failed_ids(handle(ev)) == set(message_ids(ev))
    failure = sink.get_failure("u-1")
    assert failure is not None
    assert (failure["code"], failure["retryable"]) == ("internal_error", True)
    assert "RuntimeError" in failure["message"]


@pytest.fixture
def late_store(env: pytest.MonkeyPatch) -> Iterator[tuple[str, Callable[[], None]]]:
    """A model store on S3 at 127.0.0.1:<port> where moto server starts only when asked."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env.setenv("AWS_ENDPOINT_URL", endpoint)
    env.setenv("AWS_MAX_ATTEMPTS", "1")  # fail fast against the closed port
    env.setenv("MAAS_STORE", "s3://late-models/models")
    servers: list[ThreadedMotoServer] = []

    def start() -> None:
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
        server.start()
        servers.append(server)

    yield endpoint, start
    for server in servers:
        server.stop()


@pytest.mark.parametrize("results_uri", ["local"], indirect=True)
def test_store_unreachable_at_cold_start_then_back_loses_nothing(
    late_store: tuple[str, Callable[[], None]], sink: ResultSink, trained_model: Path
) -> None:
    import boto3

    endpoint, start_moto = late_store
    app = load_function("queue")  # the cold start cannot warm the model: logged, not fatal
    ev = event("good-batch")
    assert failed_ids(app.handler(ev, lambda_context())) == set(message_ids(ev))
    assert sink.list_results() == []
    failure = sink.get_failure("review-0001")
    assert failure is not None and (failure["code"], failure["retryable"]) == ("store_error", True)

    start_moto()
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="late-models")
    open_store("s3://late-models/models").publish(trained_model, "reviews", alias="production")

    assert app.handler(redelivered(ev), lambda_context()) == {"batchItemFailures": []}
    assert sink.list_results() == ["review-0001", "review-0002", "review-0003"]


# ------------------------------------------------------------------------------- the sink
def test_sink_writes_a_result_once(sink: ResultSink) -> None:
    assert sink.put_result("r-1", {"n": 1}) is True
    assert sink.put_result("r-1", {"n": 2}) is False
    assert sink.get_result("r-1") == {"n": 1}
    assert sink.get_result("r-2") is None
    sink.put_result("s-1", {"n": 3})
    assert sink.list_results() == ["r-1", "s-1"]
    assert sink.list_results("r-") == ["r-1"]


def test_sink_failures_are_overwritten(sink: ResultSink) -> None:
    sink.put_failure("r-1", {"attempt": 1})
    sink.put_failure("r-1", {"attempt": 2})
    assert sink.get_failure("r-1") == {"attempt": 2}
    assert sink.list_failures() == ["r-1"] and sink.list_results() == []


def test_sink_stores_utf8_json(sink: ResultSink) -> None:
    sink.put_result("u-1", {"label": "正面"})
    assert sink.get_result("u-1") == {"label": "正面"}


@pytest.mark.parametrize("results_uri", ["s3"], indirect=True)
def test_s3_sink_keys_live_under_its_prefix(sink: ResultSink, results_uri: str) -> None:
    import boto3

    sink.put_result("k-1", {})
    sink.put_failure("k-2", {})
    bucket = results_uri.removeprefix("s3://").split("/")[0]
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(keys) == ["batch/failures/k-2.json", "batch/results/k-1.json"]


def test_the_function_writes_where_maas_results_says(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env.setenv("MAAS_RESULTS", str(tmp_path / "from-env"))
    app = load_function("queue")
    app.handler(batch({"id": "e-1", "text": "很好"}), lambda_context())
    assert (tmp_path / "from-env" / "results" / "e-1.json").is_file()
