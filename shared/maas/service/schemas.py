"""Request, response and message shapes, declared once.

The HTTP function validates its body with these models (Powertools derives the OpenAPI document
from them), the queue function parses each SQS message body with `QueueMessage`, and both turn a
validation failure into the same error code with `invalid_input`. Every rule raises a
`PydanticCustomError` whose type *is* the stable error code, so the code lives next to the rule.

The limits a rule enforces are the function's own (`ServiceSettings.limits`): each handler
validates inside `enforcing(limits)`, so the HTTP function (64 texts a request) and the queue
function (1000 texts a message) can share one process, as they do in `maas serve`. Outside
any handler the defaults of `maas.core.limits` apply.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from maas.core import jsontext
from maas.core.limits import (
    DEFAULT_LIMITS,
    MAX_ID_CHARS,
    NOT_BLANK_PATTERN,
    Limits,
    check_text,
)
from maas.errors import ErrorCode, InvalidInput, InvalidJson, InvalidModelRef, MaasError
from maas.store.refs import ModelRef

_LIMITS: ContextVar[Limits] = ContextVar("maas_limits", default=DEFAULT_LIMITS)
# A message id becomes an S3 key (`results/<id>.json`): S3's "safe" characters only, no "/",
# and a letter or digit first so a local sink never creates hidden files.
_KEY_RE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.\-!*'()]{{0,{MAX_ID_CHARS - 1}}}")


@contextlib.contextmanager
def enforcing(limits: Limits) -> Iterator[None]:
    """Validate with these limits (and document them in the OpenAPI document) in the block."""
    token = _LIMITS.set(limits)
    try:
        yield
    finally:
        _LIMITS.reset(token)


def current_limits() -> Limits:
    return _LIMITS.get()


# ------------------------------------------------------------------------------- rules
def _check_text(value: str) -> str:
    problem = check_text(value, current_limits().max_text_chars)
    if problem is not None:
        facts = {"length": problem.length, "limit": problem.limit}
        raise PydanticCustomError(
            str(problem.code), problem.message, {k: v for k, v in facts.items() if v is not None}
        )
    return value


def _check_count(value: Any) -> Any:
    # Before item validation, so an oversized list is refused without looking at every text.
    if isinstance(value, list):
        limit = current_limits().max_texts
        if len(value) > limit:
            raise PydanticCustomError(
                str(ErrorCode.TOO_MANY_TEXTS),
                "has {count} texts; the limit is {limit}",
                {"count": len(value), "limit": limit},
            )
        if not value:
            raise PydanticCustomError(
                str(ErrorCode.MISSING_TEXT), "is empty: send at least one text"
            )
    return value


def _check_key(code: ErrorCode) -> Any:
    def check(value: str) -> str:
        if not _KEY_RE.fullmatch(value):
            raise PydanticCustomError(
                str(code),
                f"must be 1-{MAX_ID_CHARS} characters: letters, digits and _ . - ! * ' ( ), "
                "starting with a letter or digit",
            )
        return value

    return check


def _check_model_ref(value: str) -> str:
    try:
        ModelRef.parse(value)
    except InvalidModelRef as exc:
        raise PydanticCustomError(
            str(ErrorCode.INVALID_MODEL_REFERENCE),
            "is not a model reference: {reason}",
            {"reason": exc.message},
        ) from None
    return value


# The limits in the OpenAPI document are read when it is generated, like the validators read
# them, so both always state the limits the function enforces.
Text = Annotated[
    str,
    AfterValidator(_check_text),
    Field(
        description="A text to classify; not blank.",
        # not blank: the validator's rule, in the document's terms
        json_schema_extra=lambda schema: schema.update(
            minLength=1, maxLength=current_limits().max_text_chars, pattern=NOT_BLANK_PATTERN
        ),
    ),
]
Texts = Annotated[
    list[Text],
    BeforeValidator(_check_count),
    Field(
        description="Texts to classify together; their predictions come back in the same order.",
        json_schema_extra=lambda schema: schema.update(
            minItems=1, maxItems=current_limits().max_texts
        ),
    ),
]


# -------------------------------------------------------------------------------- input
def _exactly_one_of_text_and_texts(schema: dict[str, Any]) -> None:
    """The document states the rule the validator enforces: `text` or `texts`, present and
    not null, never both (pydantic alone would call both optional and nullable)."""
    properties = schema.get("properties", {})
    for key in ("text", "texts"):
        spec = properties.get(key, {})
        options = [o for o in spec.pop("anyOf", []) if o.get("type") != "null"]
        if len(options) == 1:
            spec.update(options[0])
        spec.pop("default", None)
    schema["oneOf"] = [{"required": ["text"]}, {"required": ["texts"]}]


def _explain_description(schema: dict[str, Any]) -> None:
    limits = current_limits()
    schema["description"] = (
        "Also explain each prediction: every token the model reads, with its span in the "
        "text and its contribution to the predicted label's probability (leave-one-out: "
        f"up to {limits.explain_max_invokes} model invokes a text instead of one). At most "
        f"{limits.max_explained_texts} texts when explaining."
    )


class _TextsInput(BaseModel):
    """Exactly one of `text` and `texts`; optionally explained."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_exactly_one_of_text_and_texts)

    # repr=False: a user's text never reaches a log through a repr
    text: Text | None = Field(default=None, repr=False)
    texts: Texts | None = Field(default=None, repr=False)
    explain: StrictBool = Field(default=False, json_schema_extra=_explain_description)

    @model_validator(mode="after")
    def _exactly_one(self) -> _TextsInput:
        if self.text is None and self.texts is None:
            raise PydanticCustomError(str(ErrorCode.MISSING_TEXT), "send either 'text' or 'texts'")
        if self.text is not None and self.texts is not None:
            raise PydanticCustomError(
                str(ErrorCode.BOTH_TEXT_AND_TEXTS), "send either 'text' or 'texts', not both"
            )
        if self.explain and self.texts is not None:
            limit = current_limits().max_explained_texts
            if len(self.texts) > limit:
                raise PydanticCustomError(
                    str(ErrorCode.TOO_MANY_EXPLAINED_TEXTS),
                    "explain is limited to {limit} texts; this request has {count}: send "
                    "fewer texts, or leave explain out",
                    {"count": len(self.texts), "limit": limit},
                )
        return self

    def all_texts(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or ())


def _predict_schema(schema: dict[str, Any]) -> None:
    _exactly_one_of_text_and_texts(schema)
    schema["examples"] = [
        {"text": "房间很干净 服务也很好"},
        {"texts": ["很好", "太差了"]},
        {"text": "房间很干净 服务也很好", "explain": True},
    ]


class PredictRequest(_TextsInput):
    """Body of `POST /models/{name}/predict`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_predict_schema)


MessageId = Annotated[str, AfterValidator(_check_key(ErrorCode.INVALID_ID))]
BatchId = Annotated[str, AfterValidator(_check_key(ErrorCode.INVALID_BATCH))]
TextId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]


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
                str(ErrorCode.IDS_MISMATCH),
                "ids has {ids} entries for {texts} texts: send one id per text",
                {"ids": len(self.ids), "texts": texts},
            )
        if len(set(self.ids)) != len(self.ids):
            raise PydanticCustomError(
                str(ErrorCode.DUPLICATE_IDS), "ids has duplicates: one id per text"
            )
        return self

    @staticmethod
    def readable_keys(body: str) -> tuple[str | None, str | None]:
        """The id and batch of a message body that failed validation, those that are usable,
        so its failure can still be filed under its id and counted in its batch."""
        try:
            doc = jsontext.loads(body)
        except MaasError:
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


class TokenContributionOut(BaseModel):
    token: str = Field(description="The token as the model reads it (normalized, case-folded).")
    start: int = Field(ge=0, description="Where it starts in the text (Unicode code points).")
    end: int = Field(ge=0, description="Where it ends: text[start:end] became the token.")
    contribution: float = Field(
        description="How much the label's probability drops without this token (negative: "
        "it speaks against the label)."
    )
    known: bool = Field(
        default=True,
        exclude_if=lambda known: known,
        description="False: not in the model's vocabulary (read as the unknown token).",
    )


class ExplanationOut(BaseModel):
    method: str = Field(description="leave-one-out")
    label: str = Field(description="The label explained: the predicted one.")
    probability: float = Field(description="Its probability with every token read.")
    without_tokens: float = Field(description="Its probability with no token at all.")
    sum: float = Field(description="The sum of the contributions.")
    tokens: list[TokenContributionOut] = Field(
        description="The tokens the model reads, in order; n-grams of scripts written without "
        "spaces overlap."
    )
    invokes: int = Field(description="Model invokes this explanation cost.")
    tokens_per_group: int = Field(
        description="1: each token left out on its own; N: a long text was explained by "
        "groups of N tokens, each token of a group given an equal share."
    )
    unread_tokens: int = Field(description="Tokens past what the model reads (no contribution).")


class PredictionOut(BaseModel):
    label: str = Field(description="The most probable label.")
    score: float = Field(description="Its probability.")
    scores: dict[str, float] = Field(description="The probability of every label.")
    explanation: ExplanationOut | None = Field(
        default=None,
        exclude_if=lambda explanation: explanation is None,
        description='Present when the request asked for "explain": true.',
    )


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
    explain: bool = Field(
        default=True, description='Whether predict accepts "explain": true for this model.'
    )


class ModelSummary(BaseModel):
    name: str
    versions: list[str] = Field(description="Published versions, oldest first.")
    aliases: dict[str, str] = Field(description="Alias -> the version it points at.")
    default: str | None = Field(
        description="The version a bare name means here (its alias, else the latest)."
    )


class ModelList(BaseModel):
    """`GET /models`: the models of the store the function serves from."""

    models: list[ModelSummary]


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
    body_sha256: str = Field(
        description="sha256 of the message body: a redelivery has the same, a different "
        "message that reuses the id does not."
    )


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
    body_sha256: str = Field(description="sha256 of the message body that failed.")


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
# Our own rules (PydanticCustomError types) are codes already; pydantic's built-in error types
# are folded into a few codes. Anything else is "invalid_input".
CUSTOM_CODES = frozenset(
    {
        ErrorCode.MISSING_TEXT,
        ErrorCode.BOTH_TEXT_AND_TEXTS,
        ErrorCode.EMPTY_TEXT,
        ErrorCode.TEXT_TOO_LONG,
        ErrorCode.TOO_MANY_TEXTS,
        ErrorCode.TOO_MANY_EXPLAINED_TEXTS,
        ErrorCode.INVALID_ID,
        ErrorCode.INVALID_BATCH,
        ErrorCode.INVALID_MODEL_REFERENCE,
        ErrorCode.IDS_MISMATCH,
        ErrorCode.DUPLICATE_IDS,
    }
)
_WRONG_TYPE = ("_type", "_parsing")
_EXPECTED = {
    "string_type": "a string",
    "list_type": "an array",
    "model_type": "an object",
    "bool_type": "true or false",
}


MAX_LISTED_PROBLEMS = 20
MAX_FIELD_CHARS = 40  # a field name is the caller's text: only so much of it comes back


def _field_path(loc: Sequence[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] == "body":  # Powertools prefixes the request body's errors
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
            continue
        name = str(part)
        if len(name) > MAX_FIELD_CHARS:
            name = f"{name[: MAX_FIELD_CHARS - 1]}…"
        path += f".{name}" if path else name
    return path


def _code(kind: str, field: str) -> ErrorCode:
    if kind in CUSTOM_CODES:
        return ErrorCode(kind)
    if kind == "json_invalid":
        return ErrorCode.INVALID_JSON
    if kind == "extra_forbidden":
        return ErrorCode.UNKNOWN_FIELD
    if kind == "missing":
        if not field:
            return ErrorCode.MISSING_BODY
        return ErrorCode.MISSING_ID if field == "id" else ErrorCode.INVALID_INPUT
    if kind.endswith(_WRONG_TYPE):
        return ErrorCode.WRONG_TYPE
    return ErrorCode.INVALID_INPUT


def _message(kind: str, code: ErrorCode, field: str, error: Mapping[str, Any]) -> str:
    ctx = error.get("ctx") or {}
    if code == ErrorCode.INVALID_JSON:
        return f"the body is not valid JSON: {ctx.get('error', error.get('msg', ''))}"
    if code == ErrorCode.UNKNOWN_FIELD:
        return f"unknown field {field!r}"
    if code == ErrorCode.WRONG_TYPE and not field:
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
    for error in items[:MAX_LISTED_PROBLEMS]:
        kind = str(error.get("type", ""))
        # (Powertools puts the character offset of a JSON error in its loc: not a field)
        field = "" if kind == "json_invalid" else _field_path(error.get("loc", ()))
        code = _code(kind, field)
        message = _message(kind, code, field, error)
        problem: dict[str, Any] = {"code": str(code), "message": message}
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
    if len(items) > 1:
        details["errors"] = problems
    if len(items) > len(problems):
        details["problems"] = len(items)
    cls = InvalidJson if first["code"] == ErrorCode.INVALID_JSON else InvalidInput
    return cls(first["message"], code=ErrorCode(first["code"]), **details)
