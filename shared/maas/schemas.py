"""Request, response and message shapes, declared once.

The HTTP function validates its body with these models (Powertools derives the OpenAPI document
from them), the queue function parses each SQS message body with `QueueMessage`, and both turn a
validation failure into the same error code with `invalid_input`. Every rule raises a
`PydanticCustomError` whose type *is* the stable error code, so the code lives next to the rule.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from maas.errors import InvalidInput, InvalidModelRef, MaasError
from maas.store import ModelRef

DEFAULT_MAX_TEXTS = 64
DEFAULT_MAX_TEXT_CHARS = 10_000
# A message id becomes an S3 key (`results/<id>.json`): S3's "safe" characters only, no "/",
# and a letter or digit first so a local sink never creates hidden files.
_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-!*'()]{0,255}$")


def max_texts() -> int:
    return int(os.environ.get("MAAS_MAX_TEXTS") or DEFAULT_MAX_TEXTS)


def max_text_chars() -> int:
    return int(os.environ.get("MAAS_MAX_TEXT_CHARS") or DEFAULT_MAX_TEXT_CHARS)


# ------------------------------------------------------------------------------- rules
def _check_text(value: str) -> str:
    limit = max_text_chars()
    if len(value) > limit:
        raise PydanticCustomError(
            "text_too_long",
            "has {length} characters; the limit is {limit}",
            {"length": len(value), "limit": limit},
        )
    if not value.strip():
        raise PydanticCustomError("empty_text", "is empty or only whitespace")
    return value


def _check_count(value: Any) -> Any:
    # Before item validation, so an oversized list is refused without looking at every text.
    if isinstance(value, list):
        limit = max_texts()
        if len(value) > limit:
            raise PydanticCustomError(
                "too_many_texts",
                "has {count} texts; the limit is {limit}",
                {"count": len(value), "limit": limit},
            )
        if not value:
            raise PydanticCustomError("missing_text", "is empty: send at least one text")
    return value


def _check_key(code: str) -> Any:
    def check(value: str) -> str:
        if not _KEY_RE.match(value):
            raise PydanticCustomError(
                code,
                "must be 1-256 characters: letters, digits and _ . - ! * ' ( ), "
                "starting with a letter or digit",
            )
        return value

    return check


def _check_model_ref(value: str) -> str:
    try:
        ModelRef.parse(value)
    except InvalidModelRef as exc:
        raise PydanticCustomError(
            "invalid_model_reference", "is not a model reference: {reason}", {"reason": exc.message}
        ) from None
    return value


# The limits in the OpenAPI document are read when it is generated, like the validators read
# them, so both always state the limits the function enforces.
Text = Annotated[
    str,
    AfterValidator(_check_text),
    Field(
        description="A text to classify; not blank.",
        json_schema_extra=lambda schema: schema.update(minLength=1, maxLength=max_text_chars()),
    ),
]
Texts = Annotated[
    list[Text],
    BeforeValidator(_check_count),
    Field(
        description="Texts to classify together; their predictions come back in the same order.",
        json_schema_extra=lambda schema: schema.update(minItems=1, maxItems=max_texts()),
    ),
]


# -------------------------------------------------------------------------------- input
class _TextsInput(BaseModel):
    """Exactly one of `text` and `texts`."""

    model_config = ConfigDict(extra="forbid")

    text: Text | None = None
    texts: Texts | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> _TextsInput:
        if self.text is None and self.texts is None:
            raise PydanticCustomError("missing_text", "send either 'text' or 'texts'")
        if self.text is not None and self.texts is not None:
            raise PydanticCustomError(
                "both_text_and_texts", "send either 'text' or 'texts', not both"
            )
        return self

    def all_texts(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or ())


class PredictRequest(_TextsInput):
    """Body of `POST /models/{name}/predict`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"text": "房间很干净 服务也很好"}, {"texts": ["很好", "太差了"]}]
        },
    )


MessageId = Annotated[str, AfterValidator(_check_key("invalid_id"))]
BatchId = Annotated[str, AfterValidator(_check_key("invalid_batch"))]
TextId = Annotated[str, Field(min_length=1, max_length=256)]


class QueueMessage(_TextsInput):
    """Body of an SQS message for the queue function."""

    id: MessageId = Field(description="The caller's id; the result is stored as results/<id>.json.")
    model: Annotated[str, AfterValidator(_check_model_ref)] | None = Field(
        default=None, description="NAME, NAME@ALIAS or NAME:VERSION; default: the function's model."
    )
    batch: BatchId | None = None
    ids: list[TextId] | None = Field(
        default=None,
        description="The caller's id of each text, in the order of the texts; kept in the "
        "result so predictions join back to their inputs (`maas batch submit` sends them).",
    )

    @model_validator(mode="after")
    def _ids_match_texts(self) -> QueueMessage:
        if self.ids is None:
            return self
        texts = len(self.all_texts())
        if len(self.ids) != texts:
            raise PydanticCustomError(
                "ids_mismatch",
                "ids has {ids} entries for {texts} texts: send one id per text",
                {"ids": len(self.ids), "texts": texts},
            )
        if len(set(self.ids)) != len(self.ids):
            raise PydanticCustomError("duplicate_ids", "ids has duplicates: one id per text")
        return self

    @staticmethod
    def readable_keys(body: str) -> tuple[str | None, str | None]:
        """The id and batch of a message body that failed validation, those that are usable,
        so its failure can still be filed under its id and counted in its batch."""
        try:
            doc = json.loads(body)
        except ValueError:
            return None, None
        if not isinstance(doc, dict):
            return None, None
        return _usable(_MESSAGE_ID, doc.get("id")), _usable(_BATCH_ID, doc.get("batch"))


_MESSAGE_ID: TypeAdapter[str] = TypeAdapter(MessageId)
_BATCH_ID: TypeAdapter[str] = TypeAdapter(BatchId)


def _usable(adapter: TypeAdapter[str], value: Any) -> str | None:
    try:
        return adapter.validate_python(value, strict=True)
    except ValidationError:
        return None


# ------------------------------------------------------------------------------- output
class ModelId(BaseModel):
    name: str
    version: str


class PredictionOut(BaseModel):
    label: str = Field(description="The most probable label.")
    score: float = Field(description="Its probability.")
    scores: dict[str, float] = Field(description="The probability of every label.")


class PredictResponse(BaseModel):
    model: ModelId
    predictions: list[PredictionOut]

    @classmethod
    def build(cls, name: str, version: str, predictions: Sequence[Any]) -> PredictResponse:
        """From `maas.classifier.Prediction`s (anything with `to_dict()`)."""
        return cls(
            model=ModelId(name=name, version=version),
            predictions=[PredictionOut(**p.to_dict()) for p in predictions],
        )


class ModelInfo(BaseModel):
    """`GET /models/{name}`: what `Classifier.describe()` returns."""

    name: str
    version: str
    labels: list[str]
    task: str
    metrics: dict[str, Any] = {}
    created_at: str | None = None
    published_at: str | None = None
    runtime: str


class HealthResponse(BaseModel):
    status: str = "ok"
    model: str | None = Field(description="The function's default model (MAAS_MODEL_NAME).")
    loaded: bool = Field(description="Whether that model is loaded in this process.")
    version: str | None = None


class QueueResult(BaseModel):
    """What the queue function stores as results/<id>.json."""

    id: str
    batch: str | None = None
    model: ModelId
    predictions: list[PredictionOut]
    ids: list[str] | None = Field(
        default=None, description="The text ids of the message, aligned with predictions."
    )
    sqs_message_id: str
    processed_at: str


class QueueFailure(BaseModel):
    """What the queue function stores as failures/<key>.json when a message fails."""

    id: str | None = Field(description="The message's id, when it could be read.")
    batch: str | None = None
    sqs_message_id: str
    attempt: int = Field(description="SQS ApproximateReceiveCount.")
    code: str
    message: str
    details: dict[str, Any] | None = None
    retryable: bool = Field(description="False for a malformed message (it can never succeed).")
    failed_at: str


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable; clients branch on it.")
    message: str
    details: dict[str, Any] | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


def error_body(error: MaasError) -> dict[str, Any]:
    """`{"error": {"code", "message", "details"?}}`."""
    return {"error": error.to_dict()}


# ------------------------------------------------------------------------ error mapping
class InvalidJson(InvalidInput):
    code = "invalid_json"
    status = 400


# Our own rules (PydanticCustomError types) are codes already; pydantic's built-in error types
# are folded into a few codes. Anything else is "invalid_input".
CUSTOM_CODES = frozenset(
    {
        "missing_text",
        "both_text_and_texts",
        "empty_text",
        "text_too_long",
        "too_many_texts",
        "invalid_id",
        "invalid_batch",
        "invalid_model_reference",
        "ids_mismatch",
        "duplicate_ids",
    }
)
_WRONG_TYPE = ("_type", "_parsing")
_EXPECTED = {"string_type": "a string", "list_type": "an array", "model_type": "an object"}


def _field_path(loc: Sequence[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] == "body":  # Powertools prefixes the request body's errors
        parts = parts[1:]
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _code(kind: str, field: str) -> str:
    if kind in CUSTOM_CODES:
        return kind
    if kind == "json_invalid":
        return "invalid_json"
    if kind == "extra_forbidden":
        return "unknown_field"
    if kind == "missing":
        return f"missing_{field.split('.')[-1]}" if field else "missing_body"
    if kind.endswith(_WRONG_TYPE):
        return "wrong_type"
    return "invalid_input"


def _message(kind: str, code: str, field: str, error: Mapping[str, Any]) -> str:
    ctx = error.get("ctx") or {}
    if code == "invalid_json":
        return f"the body is not valid JSON: {ctx.get('error', error.get('msg', ''))}"
    if code == "unknown_field":
        return f"unknown field {field!r}"
    if code == "wrong_type" and not field:
        return "the body must be a JSON object"
    if kind in _EXPECTED:
        return f"{field} must be {_EXPECTED[kind]}"
    if kind == "missing":
        return f"{field} is required" if field else "the body is empty: send a JSON object"
    if kind in CUSTOM_CODES:
        return f"{field} {error['msg']}" if field else str(error["msg"])
    return f"{field or 'body'}: {error.get('msg', 'invalid')}"


def invalid_input(errors: ValidationError | Sequence[Mapping[str, Any]]) -> InvalidInput:
    """A pydantic validation failure (or Powertools' list of its errors) as one of our errors:
    the first problem's code and message, its field path in `details`, and every problem when
    there are several. Never echoes the input (it may be a user's private text)."""
    items = errors.errors(include_url=False) if isinstance(errors, ValidationError) else errors
    problems = []
    for error in items:
        kind = str(error.get("type", ""))
        # (Powertools puts the character offset of a JSON error in its loc: not a field)
        field = "" if kind == "json_invalid" else _field_path(error.get("loc", ()))
        code = _code(kind, field)
        problem: dict[str, Any] = {"code": code, "message": _message(kind, code, field, error)}
        if field:
            problem["field"] = field
        if kind in CUSTOM_CODES:  # our own numbers (limits, counts), never the input
            ctx = error.get("ctx") or {}
            problem.update((key, value) for key, value in ctx.items() if isinstance(value, int))
        problems.append(problem)
    if not problems:
        return InvalidInput("invalid request")
    first = problems[0]
    details = {key: value for key, value in first.items() if key not in ("code", "message")}
    if len(problems) > 1:
        details["errors"] = problems[:20]
    cls = InvalidJson if first["code"] == "invalid_json" else InvalidInput
    return cls(first["message"], code=first["code"], **details)
