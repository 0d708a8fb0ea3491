"""Batch predictions from SQS, with partial batch responses.

Each message (`maas.schemas.QueueMessage`) is classified in one `predict` call and its result
written once to the sink (`results/<id>.json`, a conditional write, so a redelivered message
never produces a second result). A message that fails - malformed, unknown model, store or
sink unreachable - gets its reason recorded in `failures/` and is reported in
`batchItemFailures`: SQS retries it and, after maxReceiveCount, moves it to the DLQ. Nothing is
dropped silently. Logs carry ids, counts and codes, never the texts.
"""

import os
from datetime import UTC, datetime
from typing import Any, NoReturn

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from maas import tracing
from maas.classifier import Classifier, Prediction
from maas.errors import InternalError, MaasError
from maas.schemas import (
    PredictResponse,
    QueueFailure,
    QueueMessage,
    QueueResult,
    invalid_input,
)
from maas.service import ModelService
from maas.sink import ResultSink

logger = Logger()
tracer = tracing.tracer()  # X-Ray when traced; no SDK import when not
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "maas"))
# Report every failed message, even when all of a batch fail, instead of failing the invocation.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _record_load(classifier: Classifier, seconds: float) -> None:
    metrics.add_metric("ModelLoadTime", MetricUnit.Milliseconds, seconds * 1000)
    logger.info("model loaded", model=classifier.name, version=classifier.version)


service = ModelService.from_env(on_load=_record_load)
sink = ResultSink()

if service.default_model:  # warm during the cold start; on failure the first message retries
    try:
        service.classifier()
    except Exception:
        logger.warning("could not warm the default model", exc_info=True)


def record_handler(record: SQSRecord) -> None:
    message = _parse(record)
    try:
        texts = message.all_texts()
        classifier, predictions = service.predict(texts, message.model)
        written = sink.put_result(message.id, _result(message, record, classifier, predictions))
    except Exception as exc:
        _fail(record, exc, message.id, message.batch)
    metrics.add_metric("MessagesProcessed", MetricUnit.Count, 1)
    if written:
        metrics.add_metric("TextsClassified", MetricUnit.Count, len(texts))
    else:
        metrics.add_metric("DuplicateMessages", MetricUnit.Count, 1)
        logger.info("duplicate delivery: the first result stands", id=message.id)


def _parse(record: SQSRecord) -> QueueMessage:
    try:
        return QueueMessage.model_validate_json(record.body)
    except ValidationError as exc:
        error = invalid_input(exc)  # raised outside the except: pydantic's error holds the text
    _fail(record, error, *QueueMessage.readable_keys(record.body))


def _result(
    message: QueueMessage, record: SQSRecord, classifier: Classifier, predictions: list[Prediction]
) -> dict[str, Any]:
    response = PredictResponse.build(classifier.name, classifier.version, predictions)
    result = QueueResult(
        id=message.id,
        batch=message.batch,
        model=response.model,
        predictions=response.predictions,
        ids=message.ids,
        sqs_message_id=record.message_id,
        processed_at=_now(),
    )
    # `ids` only when the message had them: results of messages without ids keep their shape
    return result.model_dump(exclude={"ids"} if message.ids is None else None)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    failed = len(response.get("batchItemFailures", []))
    logger.info("batch done", messages=len(event.get("Records", [])), failed=failed)
    return dict(response)


# --------------------------------------------------------------------------------- failures
def _fail(
    record: SQSRecord, exc: Exception, message_id: str | None, batch: str | None = None
) -> NoReturn:
    """Record why a message failed (best effort) and raise, so Powertools reports it."""
    error = exc if isinstance(exc, MaasError) else InternalError(f"{type(exc).__name__}: {exc}")
    failure = QueueFailure(
        id=message_id,
        batch=batch,
        sqs_message_id=record.message_id,
        attempt=int(record.attributes.approximate_receive_count or 1),
        code=error.code,
        message=error.message,
        details=error.details or None,
        retryable=error.status >= 500,  # a malformed message or an unknown model stays so
        failed_at=_now(),
    )
    metrics.add_metric("MessagesFailed", MetricUnit.Count, 1)
    log = logger.exception if isinstance(error, InternalError) else logger.warning
    log(
        "message failed",
        id=message_id,
        sqs_message_id=record.message_id,
        code=error.code,
        attempt=failure.attempt,
    )
    try:
        sink.put_failure(message_id or record.message_id, failure.model_dump())
    except Exception:
        logger.exception("could not record the failure", sqs_message_id=record.message_id)
    raise exc


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
