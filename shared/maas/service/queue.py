"""Batch predictions from SQS, with partial batch responses: the queue function's app.

Each message (`maas.service.schemas.QueueMessage`) is classified in one `predict` call and its
result written once to the sink (`results/<id>.json`, a conditional write, so a redelivered
message never produces a second result). A message that fails - malformed, unknown model,
store or sink unreachable - gets its reason recorded in `failures/` and is reported in
`batchItemFailures`: SQS retries it and, after maxReceiveCount, moves it to the DLQ. Nothing is
dropped silently. Logs carry ids, counts and codes, never the texts.

`functions/queue/app.py` builds one `QueueFunction` per cold start; `maas batch work` and the
tests build theirs the same way.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Any, NoReturn

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ValidationError

from maas.core.classifier import Classifier, Prediction
from maas.errors import IdConflict, InternalError, MaasError
from maas.service.runtime import FunctionRuntime, Handler
from maas.service.schemas import (
    PredictResponse,
    QueueFailure,
    QueueMessage,
    QueueResult,
    invalid_input,
)
from maas.service.settings import ServiceSettings
from maas.service.sink import ResultSink


class QueueFunction:
    def __init__(self, settings: ServiceSettings, sink: ResultSink | None = None) -> None:
        self.runtime = FunctionRuntime(settings)
        self.service = self.runtime.service
        self.logger = self.runtime.logger
        self.metrics = self.runtime.metrics
        self.sink = sink or ResultSink(settings.results)
        # Report every failed message, even when all of a batch fail, instead of failing the
        # invocation.
        self.processor = BatchProcessor(
            event_type=EventType.SQS, raise_on_entire_batch_failure=False
        )
        self.handler: Handler = self.runtime.lambda_handler(self._handle)
        self.runtime.warm()

    @classmethod
    def from_env(cls) -> QueueFunction:
        return cls(ServiceSettings.from_env("queue"))

    def _handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        response = process_partial_response(
            event=event,
            record_handler=self.record_handler,
            processor=self.processor,
            context=context,
        )
        failed = len(response.get("batchItemFailures", []))
        self.logger.info("batch done", messages=len(event.get("Records", [])), failed=failed)
        return dict(response)

    def record_handler(self, record: SQSRecord) -> None:
        message = self._parse(record)
        digest = _body_sha256(record)
        try:
            texts = message.all_texts()
            started = time.perf_counter()
            classifier, predictions = self.service.predict(
                texts,
                message.model,
                explain=message.explain,
                max_invokes=self.runtime.settings.limits.explain_max_invokes,
                routing_key=message.id,  # a redelivery meets the same version
            )
            latency_ms = (time.perf_counter() - started) * 1000
            self.runtime.version_metrics(classifier, predictions, latency_ms)
            self.runtime.run_shadow(texts, message.model, message.id, classifier, predictions)
            result = self._result(message, record, classifier, predictions, digest)
            written = self.sink.put_result(message.id, result)
            if not written:
                first = self.sink.get_result(message.id) or {}
                if first.get("body_sha256", digest) != digest:
                    raise IdConflict(
                        f"id {message.id!r} already has the result of a different message "
                        f"(SQS message {first.get('sqs_message_id')}); send this one under "
                        "an id of its own"
                    )
        except IdConflict as exc:
            # filed under its SQS id: the id's own record belongs to the first message
            self._fail(record, exc, message.id, message.batch, key=record.message_id)
        except Exception as exc:
            self._fail(record, exc, message.id, message.batch)
        self.metrics.add_metric("MessagesProcessed", MetricUnit.Count, 1)
        if written:
            self.metrics.add_metric("TextsClassified", MetricUnit.Count, len(texts))
            if message.explain:
                self.metrics.add_metric("ExplainedTexts", MetricUnit.Count, len(texts))
        else:
            self.metrics.add_metric("DuplicateMessages", MetricUnit.Count, 1)
            self.logger.info("duplicate delivery: the first result stands", id=message.id)

    def _parse(self, record: SQSRecord) -> QueueMessage:
        try:
            return QueueMessage.model_validate_json(record.body)
        except ValidationError as exc:
            error = invalid_input(exc)  # raised outside the except: pydantic's error holds text
        self._fail(record, error, *QueueMessage.readable_keys(record.body))

    @staticmethod
    def _result(
        message: QueueMessage,
        record: SQSRecord,
        classifier: Classifier,
        predictions: list[Prediction],
        body_sha256: str,
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
            body_sha256=body_sha256,
        )
        # `ids` only when the message had them: results of messages without ids keep their shape
        return result.model_dump(exclude={"ids"} if message.ids is None else None)

    def _fail(
        self,
        record: SQSRecord,
        exc: Exception,
        message_id: str | None,
        batch: str | None = None,
        key: str | None = None,
    ) -> NoReturn:
        """Record why a message failed (best effort) and raise, so Powertools reports it.

        The record is filed under the message's id (its latest attempt wins), unless that id
        already holds the failure of a different message (another body): then under the SQS
        id, so that no message's record replaces another's."""
        error = exc if isinstance(exc, MaasError) else InternalError(f"{type(exc).__name__}: {exc}")
        digest = _body_sha256(record)
        failure = QueueFailure(
            id=message_id,
            batch=batch,
            sqs_message_id=record.message_id,
            attempt=int(record.attributes.approximate_receive_count or 1),
            code=str(error.code),
            message=error.message,
            details=error.details or None,
            retryable=error.retryable,  # a malformed message or an unknown model stays so
            failed_at=_now(),
            body_sha256=digest,
        )
        self.metrics.add_metric("MessagesFailed", MetricUnit.Count, 1)
        log = self.logger.exception if isinstance(error, InternalError) else self.logger.warning
        log(
            "message failed",
            id=message_id,
            sqs_message_id=record.message_id,
            code=str(error.code),
            attempt=failure.attempt,
        )
        try:
            if key is None and message_id is not None:
                earlier = self.sink.get_failure(message_id)
                if earlier and earlier.get("body_sha256", digest) != digest:
                    key = record.message_id
            self.sink.put_failure(key or message_id or record.message_id, failure.model_dump())
        except Exception:
            self.logger.exception("could not record the failure", sqs_message_id=record.message_id)
        raise exc


def _body_sha256(record: SQSRecord) -> str:
    return hashlib.sha256(record.body.encode("utf-8", "surrogatepass")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
