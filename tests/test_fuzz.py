"""Fuzzing the real handlers as an attacker would, a few thousand cases per `make test`
(`make fuzz` runs ten times as many and writes a report):

- API Gateway events (hypothesis): any method, path, headers and body, through the HTTP
  function: never a 5xx, always the error shape, small error bodies, no text in the logs;
- the OpenAPI document (schemathesis, through the API Gateway emulator): every operation,
  valid and invalid requests, responses checked against the document;
- SQS batches (hypothesis) through the queue function, with exact accounting: every message
  has a result or a failure record and an item failure;
- mutated model files: opening and running them never takes the process down.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import schemathesis
from conftest import REPO, open_store
from fuzzing import (
    SECRET,
    Record,
    check_http_answer,
    examples,
    http_events,
    queue_bodies,
    rss_kib,
    timed,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from maas.core import manifest as artifact
from maas.core import probe
from maas.core.classifier import Classifier
from maas.core.limits import MAX_EXPLAINED_TEXTS_PER_REQUEST
from maas.errors import MaasError
from maas.local.gateway import Gateway
from maas.local.lambda_runtime import lambda_context, load_event, load_function
from maas.service.sink import ResultSink

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]
FAST = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
RECORDS: dict[str, Record] = {}


def record(name: str) -> Record:
    return RECORDS.setdefault(name, Record(name))


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    """With MAAS_FUZZ_REPORT=DIR (make fuzz), the counts, statuses and timings as JSON."""
    yield
    folder = os.environ.get("MAAS_FUZZ_REPORT")
    if folder and RECORDS:
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        summary = {name: r.summary() for name, r in RECORDS.items()}
        (out / f"fuzz-{stamp}.json").write_text(json.dumps(summary, indent=1) + "\n")


@pytest.fixture(scope="module")
def environment(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    work = tmp_path_factory.mktemp("fuzz")
    open_store(work / "store").publish(trained_model, "reviews", alias="production")
    saved = dict(os.environ)
    os.environ.update(
        MAAS_STORE=str(work / "store"),
        MAAS_MODEL_NAME="reviews",
        MAAS_CACHE_DIR=str(work / "cache"),
        MAAS_RESULTS=str(work / "results"),
        POWERTOOLS_LOG_LEVEL="DEBUG",  # everything the functions log is inspected
    )
    try:
        yield work
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def logs() -> io.StringIO:
    return io.StringIO()


@pytest.fixture(scope="module")
def http_app(environment: Path, logs: io.StringIO) -> ModuleType:
    app = load_function("http")
    app.function.logger.registered_handler.stream = logs
    return app


@pytest.fixture(scope="module")
def queue_app(environment: Path, logs: io.StringIO) -> ModuleType:
    app = load_function("queue")
    app.function.logger.registered_handler.stream = logs
    return app


# --------------------------------------------------------------------------- HTTP events
TEMPLATE = load_event("http", "predict-one")


def test_any_api_gateway_event_gets_a_client_error_or_an_answer(
    http_app: ModuleType, logs: io.StringIO
) -> None:
    statuses = record("http events")
    kept: list[dict[str, Any]] = []

    @settings(FAST, max_examples=examples(2000))
    @given(http_events(TEMPLATE))
    def run(event: dict[str, Any]) -> None:
        if len(kept) < 1000:
            kept.append(json.loads(json.dumps(event)))
        response, seconds = timed(http_app.handler, event, lambda_context())
        statuses.add(check_http_answer(response), seconds)
        assert SECRET not in logs.getvalue(), "a text reached the log"
        logs.seek(0)
        logs.truncate()

    run()
    # The handler's own memory, apart from hypothesis's: the same events, three times over
    before = rss_kib()
    for _ in range(3):
        for event in kept:
            http_app.handler(event, lambda_context())
        logs.seek(0)
        logs.truncate()
    statuses.extra["replayed_events"] = 3 * len(kept)
    statuses.extra["handler_rss_growth_mib"] = round((rss_kib() - before) / 1024, 1)
    assert set(statuses.statuses) - {"200", "400", "404", "405", "413", "415", "422"} == set()


# ------------------------------------------------------------------------- schemathesis
@pytest.fixture(scope="module")
def api_schema(http_app: ModuleType) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", Gateway(http_app.handler))


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode))
def test_every_operation_of_the_openapi_document(api_schema: Any, mode: Any) -> None:
    """Requests made from the document itself - valid ones, and (negative mode) ones that
    break it on purpose - over the ASGI gateway; each answer checked against the document
    (status documented, JSON, body matching its schema) and never a 5xx."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "POST /models/{name}/predict",
        "GET /models/{name}",
        "GET /health",
    }
    for operation in operations:
        if mode == schemathesis.GenerationMode.POSITIVE and operation.path.endswith("/infer"):
            # An inference request's shape must count its data: a rule JSON Schema cannot
            # state. tests/test_openinference.py generates valid ones itself.
            continue
        try:
            fuzz_operation(operation, mode)
        except Unsatisfiable:
            # an operation without inputs (GET /health) has no invalid request to make
            assert mode == schemathesis.GenerationMode.NEGATIVE, operation.label


def fuzz_operation(operation: Any, mode: Any) -> None:
    calls = record(f"openapi {mode.value} {operation.method.upper()} {operation.path}")

    @settings(FAST, max_examples=examples(100))
    @given(operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        body = case.body if isinstance(case.body, dict) else {}
        texts = body.get("texts")
        if mode == schemathesis.GenerationMode.POSITIVE and body.get("explain") is True:
            # a cross-field limit JSON Schema cannot state (explain: at most 16 texts);
            # tests/test_explain.py checks its 422
            assume(not isinstance(texts, list) or len(texts) <= MAX_EXPLAINED_TEXTS_PER_REQUEST)
        response, seconds = timed(case.call)
        calls.add(response.status_code, seconds)
        assert response.status_code < 500, response.text
        case.validate_response(response)

    run()


# -------------------------------------------------------------------------------- queue
def sqs_event(bodies: list[str]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "r",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:fuzz",
                "awsRegion": "us-east-1",
            }
            for body in bodies
        ]
    }


def test_any_queue_batch_is_accounted_for_exactly(queue_app: ModuleType, logs: io.StringIO) -> None:
    outcomes = record("queue messages")

    @settings(FAST, max_examples=examples(400))
    @given(st.lists(queue_bodies(), min_size=1, max_size=8))
    def run(bodies: list[str]) -> None:
        folder = Path(tempfile.mkdtemp(prefix="fuzz-sink-"))
        sink = ResultSink(folder)
        queue_app.function.sink = sink
        event = sqs_event(bodies)
        response, seconds = timed(queue_app.handler, event, lambda_context())
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        failures = {key: sink.get_failure(key) for key in sink.list_failures()}
        by_sqs_id = {doc["sqs_message_id"]: doc for doc in failures.values() if doc}
        seen: dict[str, str] = {}
        for entry in event["Records"]:
            digest = hashlib.sha256(entry["body"].encode("utf-8", "surrogatepass")).hexdigest()
            if entry["messageId"] in failed:
                # its own record, or the record of the same body under the same id (a second
                # delivery of one message: the latest attempt is what its record says)
                same = [d for d in failures.values() if d and d["body_sha256"] == digest]
                found = by_sqs_id.get(entry["messageId"]) or (same[0] if same else None)
                assert found is not None, "a failed message has a record"
                outcomes.add(found["code"], seconds / len(bodies))
                continue
            doc = json.loads(entry["body"])
            result = sink.get_result(doc["id"])
            assert result is not None, "a message that did not fail has a result"
            assert result["body_sha256"] == seen.get(doc["id"], digest), "its own, or a redelivery"
            seen.setdefault(doc["id"], digest)
            outcomes.add("result", seconds / len(bodies))
        shutil.rmtree(folder, ignore_errors=True)

    run()
    assert SECRET not in logs.getvalue(), "a text reached the log"


# --------------------------------------------------------------------------- model files
@st.composite
def mutations(draw: st.DrawFn, size: int) -> tuple[str, int, bytes]:
    kind = draw(st.sampled_from(["truncate", "flip", "zero", "insert"]))
    at = draw(st.integers(0, size - 1))
    return kind, at, draw(st.binary(min_size=1, max_size=64))


def mutate(data: bytes, kind: str, at: int, noise: bytes) -> bytes:
    if kind == "truncate":
        return data[:at]
    if kind == "insert":
        return data[:at] + noise + data[at:]
    patch = bytes(len(noise)) if kind == "zero" else noise
    return data[:at] + patch + data[at + len(patch) :]


def test_mutated_model_files_never_take_the_process_down(
    trained_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = (trained_model / "model.tflite").read_bytes()
    outcomes = record("mutated models")
    monkeypatch.setattr(probe, "PROBE_SECONDS", 1.0)  # a hanging file costs a second, not five
    manifest = artifact.read_manifest(trained_model).updated(buckets=None)

    @settings(FAST, max_examples=examples(60))
    @given(mutations(len(source)))
    def run(mutation: tuple[str, int, bytes]) -> None:
        folder = Path(tempfile.mkdtemp(dir=tmp_path))
        shutil.copyfile(trained_model / "tokenizer.json", folder / "tokenizer.json")
        (folder / "model.tflite").write_bytes(mutate(source, *mutation))
        described = artifact.write_manifest(folder, manifest)
        try:
            (classifier, seconds) = timed(Classifier, folder, described)
            classifier.predict(["很好", "太差了", ""])
            outcomes.add("served", seconds)
        except MaasError as exc:
            outcomes.add(str(exc.code), 0.0)
        shutil.rmtree(folder, ignore_errors=True)

    run()
    assert REPO.is_dir()  # and this process is still here to say so
    assert outcomes.statuses["served"] + outcomes.statuses["model_crashed"] >= 1
