"""Online predictions behind API Gateway (HTTP API, payload v2): the HTTP function's app.

Powertools routes and validates each request against `maas.service.schemas`, the model
service does the work, and this module maps every error to its HTTP status (the only place
that mapping exists). Every client mistake is a 4xx with `{"error": {"code", "message"}}`.
Logs carry counts, lengths, the model and latency, never the texts.

`functions/http/app.py` builds one `HttpFunction` per cold start; `maas serve` and the tests
build theirs the same way.
"""

# Powertools' route and exception_handler decorators have no return annotations:
# mypy: disable-error-code="untyped-decorator"

from __future__ import annotations

import base64
import binascii
import functools
import json
import time
from http import HTTPStatus
from importlib import resources
from typing import Annotated, Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel

from maas.core import jsontext
from maas.core.limits import MAX_ID_CHARS
from maas.errors import (
    ErrorCode,
    InternalError,
    InvalidInput,
    InvalidJson,
    MaasError,
    MethodNotAllowed,
    ModelRejected,
    PayloadTooLarge,
    RouteNotFound,
    UnsupportedMediaType,
)
from maas.service.runtime import FunctionRuntime, Handler
from maas.service.schemas import (
    ErrorResponse,
    HealthResponse,
    ModelInfo,
    ModelList,
    ModelSummary,
    PredictRequest,
    PredictResponse,
    error_body,
    invalid_input,
)
from maas.service.settings import ServiceSettings
from maas.store.refs import REFERENCE_PATTERN

ROUTING_HEADER = "x-maas-routing-key"

# The HTTP status of each error code; a code not listed is a server error (500).
_CLIENT_STATUS = {
    ErrorCode.INVALID_JSON: HTTPStatus.BAD_REQUEST,
    ErrorCode.INVALID_MODEL_REFERENCE: HTTPStatus.BAD_REQUEST,
    ErrorCode.MODEL_NOT_FOUND: HTTPStatus.NOT_FOUND,
    ErrorCode.ROUTE_NOT_FOUND: HTTPStatus.NOT_FOUND,
    ErrorCode.METHOD_NOT_ALLOWED: HTTPStatus.METHOD_NOT_ALLOWED,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    ErrorCode.PAYLOAD_TOO_LARGE: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    ErrorCode.VERSION_CONFLICT: HTTPStatus.CONFLICT,
}
_SERVER_STATUS = {ErrorCode.STORE_ERROR: HTTPStatus.SERVICE_UNAVAILABLE}
# What a client is told of our own failures (details such as store URIs go to the log only).
_SERVER_MESSAGES = {
    ErrorCode.STORE_ERROR: "the model store is unavailable; retry shortly",
    ErrorCode.INTEGRITY_ERROR: "this model version failed its integrity checks; it is not served",
    ErrorCode.GOLDEN_MISMATCH: "this model version failed its integrity checks; it is not served",
    ErrorCode.MODEL_CRASHED: "this model version cannot be opened safely; it is not served",
}


def status_of(error: MaasError) -> HTTPStatus:
    """The HTTP status an error is answered with."""
    if error.code in _CLIENT_STATUS:
        return _CLIENT_STATUS[error.code]
    if error.code in _SERVER_STATUS:
        return _SERVER_STATUS[error.code]
    if isinstance(error, ModelRejected):  # that model is unavailable; the function is not
        return HTTPStatus.SERVICE_UNAVAILABLE
    if isinstance(error, InvalidInput):
        return HTTPStatus.UNPROCESSABLE_ENTITY
    return HTTPStatus.INTERNAL_SERVER_ERROR


# The path's model reference. Documented, not validated by Powertools: the function itself
# answers a malformed one with 400 invalid_model_reference (a pattern failure would be a 422).
ModelName = Annotated[
    str,
    Path(
        description="NAME, NAME@ALIAS or NAME:VERSION (URL-encoded); a bare name means the "
        "function's alias (production), else the latest version.",
        examples=["reviews", "reviews@production", "reviews:3"],
        json_schema_extra={"pattern": REFERENCE_PATTERN, "maxLength": 2 * 128 + 1},
    ),
]


API_DESCRIPTION = (
    "Text classification with quantized TFLite models: POST texts to "
    "/models/{name}/predict. Every client mistake is a 4xx with "
    '{"error": {"code", "message"}}.'
)
# The playground loads nothing from anywhere else: its script and styles are inline.
_PLAYGROUND_POLICY = (
    "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)


@functools.cache
def not_json(content_type: str) -> UnsupportedMediaType | None:
    """The refusal of a body that is declared as something other than JSON (none: JSON),
    with the fix for the usual cause, `curl -d` (which declares a form)."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type in ("", "application/json"):
        return None
    hint = " (curl: add -H 'content-type: application/json')" if "form" in media_type else ""
    return UnsupportedMediaType(f"send the body as application/json, not {media_type}{hint}")


def _playground_page() -> str:
    return (resources.files("maas.service") / "playground.html").read_text(encoding="utf-8")


def _responses(ok: type[BaseModel], *errors: HTTPStatus) -> dict[int, OpenAPIResponse]:
    """A route's responses for the OpenAPI document: its model on 200, ErrorResponse else."""
    responses: dict[int, OpenAPIResponse] = {
        200: {"description": "OK", "content": {"application/json": {"model": ok}}}
    }
    for status in errors:
        content: dict[str, Any] = {"application/json": {"model": ErrorResponse}}
        responses[status.value] = {"description": status.phrase, "content": content}
    return responses


class HttpFunction:
    """The HTTP function: a Powertools resolver whose routes call one model service."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.runtime = FunctionRuntime(settings)
        self.service = self.runtime.service
        self.logger = self.runtime.logger
        self.metrics = self.runtime.metrics
        # debug=False: POWERTOOLS_DEV would otherwise print every event, texts included
        self.app = APIGatewayHttpResolver(
            enable_validation=True, debug=False, json_body_deserializer=jsontext.loads
        )
        self.max_body_bytes = settings.limits.max_body_bytes
        self._add_routes()
        self.handler: Handler = self.runtime.lambda_handler(
            self._resolve, correlation_paths.API_GATEWAY_HTTP
        )
        self.runtime.warm()

    @classmethod
    def from_env(cls) -> HttpFunction:
        return cls(ServiceSettings.from_env("http"))

    def _resolve(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        if refused := self._refuse_before_routing(event):
            return refused
        return self.app.resolve(event, context)

    def _refuse_before_routing(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """What must be refused before Powertools parses anything: a body that is not JSON
        (its form and multipart parsers fail on hostile input), too large, or not decodable.
        Each is answered like any other client error."""
        body = event.get("body") or ""
        method = str(((event.get("requestContext") or {}).get("http") or {}).get("method", ""))
        if not body and method.upper() not in ("POST", "PUT", "PATCH"):
            return None  # nothing to parse (a GET's content type means nothing)
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        encoded = bool(event.get("isBase64Encoded"))
        error: MaasError | None = not_json(headers.get("content-type", ""))
        if error is None and len(body) > self.max_body_bytes * (4 / 3 if encoded else 1):
            error = PayloadTooLarge(
                f"the body is over {self.max_body_bytes} bytes", limit=self.max_body_bytes
            )
        elif error is None and body and encoded:
            try:
                base64.b64decode(body, validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                error = InvalidJson("the body is not UTF-8 encoded JSON")
        if error is None:
            return None
        response = self._error(error)
        return {
            "statusCode": response.status_code,
            "headers": {"Content-Type": content_types.APPLICATION_JSON},
            "cookies": [],
            "body": json.dumps(response.body, separators=(",", ":")),
            "isBase64Encoded": False,
        }

    # ------------------------------------------------------------------------------ routes
    def _add_routes(self) -> None:
        app = self.app
        app.post(
            "/models/<name>/predict",
            summary="Classify one text or several",
            responses=_responses(
                PredictResponse,
                HTTPStatus.BAD_REQUEST,
                HTTPStatus.NOT_FOUND,
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                HTTPStatus.UNPROCESSABLE_ENTITY,
                HTTPStatus.SERVICE_UNAVAILABLE,
            ),
        )(self.predict)
        app.get(
            "/models/<name>",
            summary="The version a name resolves to, its labels and metrics",
            responses=_responses(
                ModelInfo,
                HTTPStatus.BAD_REQUEST,
                HTTPStatus.NOT_FOUND,
                HTTPStatus.SERVICE_UNAVAILABLE,
            ),
        )(self.describe)
        app.get("/health", summary="Liveness; whether the default model is loaded (no store I/O)")(
            self.health
        )
        app.get(
            "/models",
            summary="The models this function can serve: versions, aliases, the default version",
            responses=_responses(ModelList, HTTPStatus.SERVICE_UNAVAILABLE),
        )(self.list_models)
        app.get("/openapi.json", include_in_schema=False)(self.openapi)
        if self.runtime.settings.ui:
            app.get("/", include_in_schema=False)(self.playground)
            app.enable_swagger(path="/docs", title="maas", description=API_DESCRIPTION)
        app.exception_handler(RequestValidationError)(self._invalid_request)
        app.exception_handler(RequestUnsupportedContentType)(self._unsupported_media_type)
        app.exception_handler([UnicodeDecodeError, binascii.Error])(self._undecodable_body)
        app.exception_handler(MaasError)(self._error)
        app.not_found(self._no_route)
        app.exception_handler(Exception)(self._unexpected)

    def predict(self, name: ModelName, request: PredictRequest) -> PredictResponse:
        if error := self._not_a_json_object():
            raise error
        texts = request.all_texts()
        ref = unquote(name)
        key = self._routing_key()
        started = time.perf_counter()
        classifier, predictions = self.service.predict(
            texts,
            ref,
            explain=request.explain,
            max_invokes=self.runtime.settings.limits.explain_max_invokes,
            routing_key=key,
        )
        latency_ms = (time.perf_counter() - started) * 1000
        self.runtime.version_metrics(classifier, predictions, latency_ms)
        self.runtime.run_shadow(texts, ref, key, classifier, predictions)
        self.runtime.tracer.put_annotation("model", f"{classifier.name}:{classifier.version}")
        self.metrics.add_metric("Predictions", MetricUnit.Count, len(texts))
        self.metrics.add_metric("PredictLatency", MetricUnit.Milliseconds, latency_ms)
        if request.explain:
            self.metrics.add_metric("ExplainedTexts", MetricUnit.Count, len(texts))
        self.logger.info(
            "predicted",
            model=classifier.name,
            version=classifier.version,
            texts=len(texts),
            chars=sum(map(len, texts)),
            explained=request.explain,
            latency_ms=round(latency_ms, 2),
        )
        return PredictResponse.build(classifier.name, classifier.version, predictions)

    def _routing_key(self) -> str:
        """What decides which version of a canaried alias answers: the caller's
        `X-Maas-Routing-Key` (a user or session id: one caller, one version), else the
        request's id (each request drawn on its own)."""
        event = self.app.current_event
        key = event.headers.get(ROUTING_HEADER)
        if key:
            return key[:MAX_ID_CHARS]
        return str(event.request_context.request_id or "")

    def describe(self, name: ModelName) -> ModelInfo:
        return ModelInfo(**self.service.classifier(unquote(name)).describe())

    def health(self) -> HealthResponse:
        classifier = self.service.loaded()
        return HealthResponse(
            model=self.service.default_model,
            loaded=classifier is not None,
            version=classifier.version if classifier else None,
        )

    def list_models(self) -> ModelList:
        store = self.service.store
        summaries = []
        for name in store.models():
            versions = store.versions(name)
            if not versions:
                continue
            aliases = store.aliases(name)
            default = aliases.get(self.service.alias) or versions[-1]
            summaries.append(
                ModelSummary(name=name, versions=versions, aliases=aliases, default=default)
            )
        return ModelList(models=summaries)

    def openapi(self) -> Response[str]:
        document = self.app.get_openapi_json_schema(title="maas", description=API_DESCRIPTION)
        return Response(200, content_types.APPLICATION_JSON, document)

    def playground(self) -> Response[str]:
        return Response(
            200,
            content_types.TEXT_HTML,
            _playground_page(),
            headers={"Content-Security-Policy": _PLAYGROUND_POLICY, "Cache-Control": "no-store"},
        )

    # ------------------------------------------------------------------------------ errors
    def _error(self, error: MaasError) -> Response[dict[str, Any]]:
        status = status_of(error)
        if status < 500:
            self.metrics.add_metric("ClientErrors", MetricUnit.Count, 1)
            self.logger.info("request rejected", status=status.value, code=str(error.code))
            return Response(status.value, content_types.APPLICATION_JSON, error_body(error))
        # Our own failure: the details (store URIs, endpoints) go to the log, not to the client.
        self.metrics.add_metric("ServerErrors", MetricUnit.Count, 1)
        self.logger.error(
            "request failed", status=status.value, code=str(error.code), error=error.message
        )
        message = _SERVER_MESSAGES.get(error.code, "internal error; see the function's log")
        body = {"error": {"code": str(error.code), "message": message}}
        return Response(status.value, content_types.APPLICATION_JSON, body)

    def _not_json(self) -> UnsupportedMediaType | None:
        return not_json(self.app.current_event.headers.get("content-type", ""))

    def _not_a_json_object(self) -> MaasError | None:
        """What Powertools' validation lets through: a form body that happens to validate, and
        a JSON array (it validates the array's first item as the body and ignores the rest)."""
        if error := self._not_json():
            return error
        if not isinstance(self.app.current_event.json_body, dict):  # parsed once, cached
            return InvalidInput("the body must be a JSON object", code=ErrorCode.WRONG_TYPE)
        return None

    def _invalid_request(self, exc: RequestValidationError) -> Response[dict[str, Any]]:
        return self._error(self._not_json() or invalid_input(exc.errors()))

    def _unsupported_media_type(
        self, exc: RequestUnsupportedContentType
    ) -> Response[dict[str, Any]]:
        return self._error(
            self._not_json() or UnsupportedMediaType("send the body as application/json")
        )

    def _undecodable_body(self, exc: Exception) -> Response[dict[str, Any]]:
        return self._error(InvalidJson("the body is not UTF-8 encoded JSON"))

    def _no_route(self, exc: NotFoundError) -> Response[dict[str, Any]]:
        event = self.app.current_event
        method, path = event.http_method, event.path
        routes = self.app._static_routes + self.app._dynamic_routes  # no public route table
        allowed = sorted({route.method for route in routes if route.rule.match(path)})
        if not allowed:
            return self._error(RouteNotFound(f"no route for {method} {path}"))
        response = self._error(
            MethodNotAllowed(f"{method} is not allowed on {path}; use {', '.join(allowed)}")
        )
        response.headers["Allow"] = ", ".join(allowed)
        return response

    def _unexpected(self, exc: Exception) -> Response[dict[str, Any]]:
        self.logger.exception("unexpected error")
        return self._error(InternalError(f"{type(exc).__name__}: {exc}"))
