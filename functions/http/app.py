"""Online predictions behind API Gateway (HTTP API, payload v2).

A thin adapter: Powertools routes and validates the request against `maas.schemas`, and
`maas.service` does the work. Every client mistake is a 4xx with `{"error": {"code", ...}}`.
Logs carry counts, lengths, the model and latency, never the texts.
"""

# Powertools' exception_handler decorator has no return annotation:
# mypy: disable-error-code="untyped-decorator"

import binascii
import os
import time
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from maas import tracing
from maas.classifier import Classifier
from maas.errors import (
    InternalError,
    InvalidInput,
    MaasError,
    MethodNotAllowed,
    RouteNotFound,
    UnsupportedMediaType,
)
from maas.schemas import (
    ErrorResponse,
    HealthResponse,
    InvalidJson,
    ModelInfo,
    PredictRequest,
    PredictResponse,
    error_body,
    invalid_input,
)
from maas.service import ModelService

logger = Logger()
tracer = tracing.tracer()  # X-Ray when traced; no SDK import when not
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "maas"))
app = APIGatewayHttpResolver(enable_validation=True)


def _record_load(classifier: Classifier, seconds: float) -> None:
    metrics.add_metric("ModelLoadTime", MetricUnit.Milliseconds, seconds * 1000)
    logger.info("model loaded", model=classifier.name, version=classifier.version)


service = ModelService.from_env(on_load=_record_load)


def _warm() -> None:
    """Load the default model during the cold start (free init time); a failure is logged
    and the first request tries again."""
    if service.default_model:
        try:
            service.classifier()
        except Exception:
            logger.warning("could not warm the default model", exc_info=True)


_warm()


def _responses(ok: type[BaseModel], *errors: HTTPStatus) -> dict[int, OpenAPIResponse]:
    """A route's responses for the OpenAPI document: its model on 200, ErrorResponse else."""
    responses: dict[int, OpenAPIResponse] = {
        200: {"description": "OK", "content": {"application/json": {"model": ok}}}
    }
    for status in errors:
        content: dict[str, Any] = {"application/json": {"model": ErrorResponse}}
        responses[status.value] = {"description": status.phrase, "content": content}
    return responses


# ---------------------------------------------------------------------------------- routes
@app.post(
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
)
def predict(name: str, request: PredictRequest) -> PredictResponse:
    if error := _not_a_json_object():
        raise error
    texts = request.all_texts()
    started = time.perf_counter()
    classifier, predictions = service.predict(texts, unquote(name))
    latency_ms = (time.perf_counter() - started) * 1000
    tracer.put_annotation("model", f"{classifier.name}:{classifier.version}")
    metrics.add_metric("Predictions", MetricUnit.Count, len(texts))
    metrics.add_metric("PredictLatency", MetricUnit.Milliseconds, latency_ms)
    logger.info(
        "predicted",
        model=classifier.name,
        version=classifier.version,
        texts=len(texts),
        chars=sum(map(len, texts)),
        latency_ms=round(latency_ms, 2),
    )
    return PredictResponse.build(classifier.name, classifier.version, predictions)


@app.get(
    "/models/<name>",
    summary="The version a name resolves to, its labels and metrics",
    responses=_responses(
        ModelInfo, HTTPStatus.BAD_REQUEST, HTTPStatus.NOT_FOUND, HTTPStatus.SERVICE_UNAVAILABLE
    ),
)
def describe(name: str) -> ModelInfo:
    return ModelInfo(**service.classifier(unquote(name)).describe())


@app.get("/health", summary="Liveness; whether the default model is loaded (no store I/O)")
def health() -> HealthResponse:
    classifier = service.loaded()
    return HealthResponse(
        model=service.default_model,
        loaded=classifier is not None,
        version=classifier.version if classifier else None,
    )


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(200, content_types.APPLICATION_JSON, app.get_openapi_json_schema(title="maas"))


# ---------------------------------------------------------------------------------- errors
def _error(error: MaasError) -> Response[dict[str, Any]]:
    if error.status < 500:
        metrics.add_metric("ClientErrors", MetricUnit.Count, 1)
        logger.info("request rejected", status=error.status, code=error.code)
        return Response(error.status, content_types.APPLICATION_JSON, error_body(error))
    # Our own failure: the details (store URIs, endpoints) go to the log, not to the client.
    metrics.add_metric("ServerErrors", MetricUnit.Count, 1)
    logger.error("request failed", status=error.status, code=error.code, error=error.message)
    message = _SERVER_ERRORS.get(error.status, "internal error; see the function's log")
    body = {"error": {"code": error.code, "message": message}}
    return Response(error.status, content_types.APPLICATION_JSON, body)


_SERVER_ERRORS = {503: "the model store is unavailable; retry shortly"}


def _not_json() -> UnsupportedMediaType | None:
    media_type = app.current_event.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type in ("", "application/json"):
        return None
    return UnsupportedMediaType(f"send the body as application/json, not {media_type}")


def _not_a_json_object() -> MaasError | None:
    """What Powertools' validation lets through: a form body that happens to validate, and
    a JSON array (it validates the array's first item as the body and ignores the rest)."""
    if error := _not_json():
        return error
    if not isinstance(app.current_event.json_body, dict):  # parsed once, cached
        return InvalidInput("the body must be a JSON object", code="wrong_type")
    return None


@app.exception_handler(RequestValidationError)
def _invalid_request(exc: RequestValidationError) -> Response[dict[str, Any]]:
    return _error(_not_json() or invalid_input(exc.errors()))


@app.exception_handler(RequestUnsupportedContentType)
def _unsupported_media_type(exc: RequestUnsupportedContentType) -> Response[dict[str, Any]]:
    return _error(_not_json() or UnsupportedMediaType("send the body as application/json"))


@app.exception_handler([UnicodeDecodeError, binascii.Error])
def _undecodable_body(exc: Exception) -> Response[dict[str, Any]]:
    return _error(InvalidJson("the body is not UTF-8 encoded JSON"))


@app.exception_handler(MaasError)
def _maas_error(exc: MaasError) -> Response[dict[str, Any]]:
    return _error(exc)


@app.not_found
def _no_route(exc: NotFoundError) -> Response[dict[str, Any]]:
    method, path = app.current_event.http_method, app.current_event.path
    routes = app._static_routes + app._dynamic_routes  # Powertools has no public route table
    allowed = sorted({route.method for route in routes if route.rule.match(path)})
    if not allowed:
        return _error(RouteNotFound(f"no route for {method} {path}"))
    response = _error(
        MethodNotAllowed(f"{method} is not allowed on {path}; use {', '.join(allowed)}")
    )
    response.headers["Allow"] = ", ".join(allowed)
    return response


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response[dict[str, Any]]:
    logger.exception("unexpected error")
    return _error(InternalError(f"{type(exc).__name__}: {exc}"))


# --------------------------------------------------------------------------------- handler
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
