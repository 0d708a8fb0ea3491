"""Every error maas raises on purpose, in one place.

    MaasError                      base: a stable `code` (ErrorCode) and a message for people
    ├── InvalidInput               the caller's input cannot be used (never retryable)
    │   ├── InvalidJson            a body that is not JSON, or not UTF-8
    │   ├── UnsupportedMediaType   a body that is not application/json
    │   ├── PayloadTooLarge        a body larger than any valid request
    │   ├── BadData                a data file given to the CLI or the training job
    │   ├── IdConflict             a queue message id already used by a different message
    │   └── BatchError             a batch the client cannot follow (unknown id, lost records)
    ├── InvalidModelRef            not NAME, NAME@ALIAS or NAME:VERSION
    ├── ModelNotFound              no such model, version or alias
    ├── RouteNotFound              no such HTTP route
    ├── MethodNotAllowed           a route that exists, with another method
    ├── VersionConflict            a write-once object exists already
    ├── QualityGateFailed          the quantized model lost too much accuracy
    ├── ModelRejected              a model that fails its own checks
    │   ├── IntegrityError         unsigned, badly signed, or a file that does not match its sha256
    │   ├── GoldenMismatch         the runtime does not reproduce the golden examples
    │   └── ModelCrashed           the model file crashes, fails or hangs the interpreter
    ├── StoreError                 the model store or the results sink is unreachable (retryable)
    ├── QueueError                 SQS refused or is unreachable (retryable)
    ├── ExportFailed               the TFLite conversion failed
    ├── ConfigurationError         a setting (environment variable) that cannot be used
    └── InternalError              anything else: a bug (retryable: it may be transient)

One more, not a MaasError: `NotFound`, a key missing from a store's backend, which the store
turns into ModelNotFound or IntegrityError (a missing object means different things there).

The mapping to HTTP statuses lives at the HTTP edge (`maas.service.http`), the mapping to exit
statuses at the CLI edge (`maas.cli`); `retryable` is what the queue function reports.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar


class ErrorCode(StrEnum):
    """Stable codes: clients branch on them, so they never change meaning."""

    # a request or message that cannot be used
    INVALID_INPUT = "invalid_input"
    INVALID_JSON = "invalid_json"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    MISSING_BODY = "missing_body"
    WRONG_TYPE = "wrong_type"
    UNKNOWN_FIELD = "unknown_field"
    MISSING_TEXT = "missing_text"
    BOTH_TEXT_AND_TEXTS = "both_text_and_texts"
    EMPTY_TEXT = "empty_text"
    TEXT_TOO_LONG = "text_too_long"
    TOO_MANY_TEXTS = "too_many_texts"
    TOO_MANY_EXPLAINED_TEXTS = "too_many_explained_texts"
    INVALID_TENSOR = "invalid_tensor"
    MISSING_ID = "missing_id"
    INVALID_ID = "invalid_id"
    INVALID_BATCH = "invalid_batch"
    IDS_MISMATCH = "ids_mismatch"
    DUPLICATE_IDS = "duplicate_ids"
    ID_CONFLICT = "id_conflict"
    MISSING_MODEL = "missing_model"
    BAD_DATA = "bad_data"
    BAD_OUTPUT = "bad_output"
    BATCH_ERROR = "batch_error"
    # models and routes
    INVALID_MODEL_REFERENCE = "invalid_model_reference"
    MODEL_NOT_FOUND = "model_not_found"
    ROUTE_NOT_FOUND = "route_not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    VERSION_CONFLICT = "version_conflict"
    QUALITY_GATE_FAILED = "quality_gate_failed"
    INTEGRITY_ERROR = "integrity_error"
    GOLDEN_MISMATCH = "golden_mismatch"
    MODEL_CRASHED = "model_crashed"
    # our side
    STORE_ERROR = "store_error"
    QUEUE_ERROR = "queue_error"
    EXPORT_FAILED = "export_failed"
    CONFIGURATION_ERROR = "configuration_error"
    INTERNAL_ERROR = "internal_error"


class MaasError(Exception):
    """Base class. `code` is stable (clients branch on it); `message` is for people; `details`
    are small, JSON-able facts (limits, counts, field paths), never a user's text."""

    code: ErrorCode = ErrorCode.INTERNAL_ERROR
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": str(self.code), "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class InvalidInput(MaasError):
    """The caller sent something we cannot classify (wrong shape, empty, too long...). One
    class for many codes: `code` names the rule that refused it."""

    code = ErrorCode.INVALID_INPUT

    def __init__(self, message: str, code: ErrorCode | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        if code is not None:
            self.code = code


class InvalidJson(InvalidInput):
    code = ErrorCode.INVALID_JSON


class UnsupportedMediaType(InvalidInput):
    code = ErrorCode.UNSUPPORTED_MEDIA_TYPE


class PayloadTooLarge(InvalidInput):
    code = ErrorCode.PAYLOAD_TOO_LARGE


class IdConflict(InvalidInput):
    """Two different messages with one id: the first one's result stands; the second can
    never get one under that id, so it is failed (not retryable) with its own record."""

    code = ErrorCode.ID_CONFLICT


class BadData(InvalidInput):
    """A file the CLI or the training job was given (missing column, no rows, ...)."""

    code = ErrorCode.BAD_DATA


class BatchError(InvalidInput):
    """A batch the client side cannot follow (unknown id, lost records, unknown format)."""

    code = ErrorCode.BATCH_ERROR


class InvalidModelRef(MaasError):
    code = ErrorCode.INVALID_MODEL_REFERENCE


class ModelNotFound(MaasError):
    """`store`: where it was looked for - for a person at a terminal, not for API clients
    (it is no detail: an HTTP answer never names a bucket)."""

    code = ErrorCode.MODEL_NOT_FOUND

    def __init__(self, message: str, store: str | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.store = store


class RouteNotFound(MaasError):
    code = ErrorCode.ROUTE_NOT_FOUND


class MethodNotAllowed(MaasError):
    code = ErrorCode.METHOD_NOT_ALLOWED


class VersionConflict(MaasError):
    """A write-once object (a version's manifest, a result) was about to be written again."""

    code = ErrorCode.VERSION_CONFLICT


class QualityGateFailed(MaasError):
    code = ErrorCode.QUALITY_GATE_FAILED


class ModelRejected(MaasError):
    """A model that fails its own checks. Retryable on the queue: publishing or promoting a
    good version fixes it without touching the message."""

    retryable = True


class IntegrityError(ModelRejected):
    """A stored file does not match the sha256 its manifest recorded."""

    code = ErrorCode.INTEGRITY_ERROR


class GoldenMismatch(ModelRejected):
    """The serving runtime does not reproduce the golden examples recorded at training time."""

    code = ErrorCode.GOLDEN_MISMATCH


class ModelCrashed(ModelRejected):
    """Opening or running the model file crashed, failed or hung a probe process."""

    code = ErrorCode.MODEL_CRASHED


class StoreError(MaasError):
    """The model store (or the results sink) could not be read or written."""

    code = ErrorCode.STORE_ERROR
    retryable = True


class QueueError(MaasError):
    """SQS refused a call or could not be reached."""

    code = ErrorCode.QUEUE_ERROR
    retryable = True


class ExportFailed(MaasError):
    code = ErrorCode.EXPORT_FAILED


class ConfigurationError(MaasError):
    """A setting that cannot be used; retryable on the queue, since a fixed deployment will
    process the message."""

    code = ErrorCode.CONFIGURATION_ERROR
    retryable = True


class InternalError(MaasError):
    """Anything that is not a MaasError: a bug, reported with its type and message."""

    code = ErrorCode.INTERNAL_ERROR
    retryable = True


class NotFound(Exception):
    """A key that does not exist in a backend (internal: never reaches a user as such)."""


__all__ = [
    "BadData",
    "BatchError",
    "ConfigurationError",
    "ErrorCode",
    "ExportFailed",
    "GoldenMismatch",
    "IdConflict",
    "IntegrityError",
    "InternalError",
    "InvalidInput",
    "InvalidJson",
    "InvalidModelRef",
    "MaasError",
    "MethodNotAllowed",
    "ModelCrashed",
    "ModelNotFound",
    "ModelRejected",
    "NotFound",
    "PayloadTooLarge",
    "QualityGateFailed",
    "QueueError",
    "RouteNotFound",
    "StoreError",
    "UnsupportedMediaType",
    "VersionConflict",
]
