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
from collections.abc import Callable
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
from pydantic import BaseModel, ValidationError

from maas import __version__
from maas.core import jsontext
from maas.core.classifier import Classifier, Prediction
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
from maas.service import openinference as v2
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
from maas.store.refs import NAME_PATTERN, REFERENCE_PATTERN, VERSION_OR_ALIAS_PATTERN

ROUTING_HEADER = "x-maas-routing-key"
V2_PREFIX = "/v2"

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


ModelVersion = Annotated[
    str,
    Path(
        description="A version number, or an alias name.",
        examples=["3", "production"],
        json_schema_extra={"pattern": VERSION_OR_ALIAS_PATTERN, "maxLength": 128},
    ),
]
# With /versions/{version}, the path names the model alone.
PlainModelName = Annotated[
    str,
    Path(
        description="The model's name.",
        examples=["reviews"],
        json_schema_extra={"pattern": NAME_PATTERN, "maxLength": 128},
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


def _as_tensor_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Validation errors of the texts, named where the protocol's request holds them."""
    errors = []
    for error in exc.errors(include_url=False):
        loc = tuple(error.get("loc", ()))
        if loc[:1] == ("texts",):
            loc = ("inputs", 0, "data", *loc[1:])
        errors.append({**error, "loc": loc})
    return errors


def _playground_page() -> str:
    return (resources.files("maas.service") / "playground.html").read_text(encoding="utf-8")


def _responses(
    ok: type[BaseModel], *errors: HTTPStatus, model: type[BaseModel] = ErrorResponse
) -> dict[int, OpenAPIResponse]:
    """A route's responses for the OpenAPI document: its model on 200, `model` else."""
    responses: dict[int, OpenAPIResponse] = {
        200: {"description": "OK", "content": {"application/json": {"model": ok}}}
    }
    for status in errors:
        content: dict[str, Any] = {"application/json": {"model": model}}
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
        try:
            event = self._unpack_binary(event)
        except MaasError as error:
            return self._answer_early(error, oip=True)
        if refused := self._refuse_before_routing(event):
            return refused
        return self.app.resolve(event, context)

    @staticmethod
    def _is_v2(path: str) -> bool:
        return path == V2_PREFIX or path.startswith(V2_PREFIX + "/")

    def _unpack_binary(self, event: dict[str, Any]) -> dict[str, Any]:
        """An Open Inference request in the binary tensor extension, as the JSON request it
        encodes (every other event as it is)."""
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        length = headers.get(v2.BINARY_HEADER)
        if length is None or not self._is_v2(str(event.get("rawPath") or "")):
            return event
        body = event.get("body") or ""
        if too_large := self._too_large(body, bool(event.get("isBase64Encoded"))):
            raise too_large
        try:
            raw = (
                base64.b64decode(body, validate=True)
                if event.get("isBase64Encoded")
                else body.encode("utf-8", "surrogateescape")
            )
        except (binascii.Error, ValueError):
            raise InvalidJson("the body is not valid base64") from None
        headers.pop(v2.BINARY_HEADER)
        headers["content-type"] = content_types.APPLICATION_JSON
        unpacked = v2.unpack_binary(raw, length)
        return event | {"headers": headers, "body": unpacked, "isBase64Encoded": False}

    def _too_large(self, body: str, base64_encoded: bool) -> PayloadTooLarge | None:
        """A body larger than any valid request (base64 makes it a third larger)."""
        if len(body) <= self.max_body_bytes * (4 / 3 if base64_encoded else 1):
            return None
        return PayloadTooLarge(
            f"the body is over {self.max_body_bytes} bytes", limit=self.max_body_bytes
        )

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
        if error is None:
            error = self._too_large(body, encoded)
        if error is None and body and encoded:
            try:
                base64.b64decode(body, validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                error = InvalidJson("the body is not UTF-8 encoded JSON")
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if error is None and encoding not in ("", "identity"):
            error = UnsupportedMediaType(
                f"content-encoding {encoding[:20]} is not accepted: send the body uncompressed"
            )
        if error is None:
            return None
        return self._answer_early(error, oip=self._is_v2(str(event.get("rawPath") or "")))

    def _answer_early(self, error: MaasError, oip: bool) -> dict[str, Any]:
        """The API Gateway answer to an error found before routing."""
        response = self._error(error, oip=oip)
        return {
            "statusCode": response.status_code,
            "headers": {key: str(value) for key, value in response.headers.items()},
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
        self._add_v2_routes()
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

    def _add_v2_routes(self) -> None:
        """The Open Inference Protocol (maas.service.openinference): health, metadata, infer."""
        app = self.app
        tags = ["Open Inference Protocol (V2)"]
        errors = (HTTPStatus.BAD_REQUEST, HTTPStatus.NOT_FOUND, HTTPStatus.SERVICE_UNAVAILABLE)

        def route(
            method: str, path: str, summary: str, ok: type[BaseModel], *codes: HTTPStatus
        ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
            return app.route(
                f"{V2_PREFIX}{path}",
                method,
                summary=summary,
                tags=tags,
                responses=_responses(ok, *codes, model=v2.V2Error),
            )

        route("GET", "", "Server metadata", v2.V2ServerMetadata)(self.v2_server)
        route("GET", "/health/live", "Liveness", v2.V2Liveness)(self.v2_live)
        ready = "Readiness: the default model loads (else 503)"
        route("GET", "/health/ready", ready, v2.V2Readiness, HTTPStatus.SERVICE_UNAVAILABLE)(
            self.v2_ready
        )
        model, version = "/models/<name>", "/models/<name>/versions/<version>"
        which = " (VERSION: a version number or an alias)"
        route("GET", model, "Model metadata", v2.V2ModelMetadata, *errors)(self.v2_metadata)
        route("GET", version, f"Model metadata{which}", v2.V2ModelMetadata, *errors)(
            self.v2_version_metadata
        )
        route("GET", f"{model}/ready", "Model readiness", v2.V2Readiness, *errors)(
            self.v2_model_ready
        )
        route("GET", f"{version}/ready", f"Model readiness{which}", v2.V2Readiness, *errors)(
            self.v2_version_ready
        )
        route("POST", f"{model}/infer", "Inference", v2.V2InferResponse, *errors)(self.v2_infer)
        route("POST", f"{version}/infer", f"Inference{which}", v2.V2InferResponse, *errors)(
            self.v2_version_infer
        )

    def predict(self, name: ModelName, request: PredictRequest) -> PredictResponse:
        if error := self._not_a_json_object():
            raise error
        classifier, predictions = self._classify(
            request.all_texts(), unquote(name), request.explain, "native"
        )
        return PredictResponse.build(classifier.name, classifier.version, predictions)

    def _classify(
        self, texts: list[str], ref: str, explain: bool, protocol: str
    ) -> tuple[Classifier, list[Prediction]]:
        """Predictions for valid texts, from the version the routing key is sent to, with
        the metrics, the shadow comparison and the log line every protocol gets."""
        key = self._routing_key()
        started = time.perf_counter()
        try:
            classifier, predictions = self.service.predict(
                texts,
                ref,
                explain=explain,
                max_invokes=self.runtime.settings.limits.explain_max_invokes,
                routing_key=key,
            )
        except MaasError as error:
            if status_of(error) >= HTTPStatus.INTERNAL_SERVER_ERROR:
                self.runtime.version_failed(ref, key)  # a canary that fails shows as one
            raise
        latency_ms = (time.perf_counter() - started) * 1000
        self.runtime.version_metrics(classifier, predictions, latency_ms)
        self.runtime.run_shadow(texts, ref, key, classifier, predictions)
        self.runtime.tracer.put_annotation("model", f"{classifier.name}:{classifier.version}")
        self.metrics.add_metric("Predictions", MetricUnit.Count, len(texts))
        self.metrics.add_metric("PredictLatency", MetricUnit.Milliseconds, latency_ms)
        if explain:
            self.metrics.add_metric("ExplainedTexts", MetricUnit.Count, len(texts))
        self.logger.info(
            "predicted",
            model=classifier.name,
            version=classifier.version,
            texts=len(texts),
            chars=sum(map(len, texts)),
            explained=explain,
            protocol=protocol,
            latency_ms=round(latency_ms, 2),
        )
        return classifier, predictions

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

    # ------------------------------------------------------------ Open Inference Protocol
    def v2_server(self) -> v2.V2ServerMetadata:
        return v2.V2ServerMetadata(name="maas", version=__version__, extensions=list(v2.EXTENSIONS))

    def v2_live(self) -> v2.V2Liveness:
        return v2.V2Liveness(live=True)

    def v2_ready(self) -> Response[dict[str, Any]]:
        """Ready when the function's default model loads (no default model: always)."""
        ready = True
        if self.service.default_model:
            try:
                self.service.classifier()
            except MaasError as error:
                self.logger.info("not ready", code=str(error.code))
                ready = False
        status = HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE
        return Response(status.value, content_types.APPLICATION_JSON, {"ready": ready})

    def v2_metadata(self, name: ModelName) -> v2.V2ModelMetadata:
        return self._v2_metadata(v2.reference(unquote(name)))

    def v2_version_metadata(
        self, name: PlainModelName, version: ModelVersion
    ) -> v2.V2ModelMetadata:
        return self._v2_metadata(v2.reference(unquote(name), unquote(version)))

    def _v2_metadata(self, ref: str) -> v2.V2ModelMetadata:
        classifier = self.service.classifier(ref)
        return v2.model_metadata(classifier, self.service.store.versions(classifier.name))

    def v2_model_ready(self, name: ModelName) -> v2.V2Readiness:
        return self._v2_ready(v2.reference(unquote(name)))

    def v2_version_ready(self, name: PlainModelName, version: ModelVersion) -> v2.V2Readiness:
        return self._v2_ready(v2.reference(unquote(name), unquote(version)))

    def _v2_ready(self, ref: str) -> v2.V2Readiness:
        """Ready once the version loads (a missing one is a 404, a refused one a 503)."""
        return v2.V2Readiness(ready=True, name=self.service.classifier(ref).name)

    def v2_infer(self, name: ModelName, request: v2.V2InferRequest) -> Response[Any]:
        return self._v2_infer(v2.reference(unquote(name)), request)

    def v2_version_infer(
        self, name: PlainModelName, version: ModelVersion, request: v2.V2InferRequest
    ) -> Response[Any]:
        return self._v2_infer(v2.reference(unquote(name), unquote(version)), request)

    def _v2_infer(self, ref: str, request: v2.V2InferRequest) -> Response[Any]:
        if error := self._not_a_json_object():
            raise error
        plan = v2.Plan(request)
        texts = v2.texts_of(request)
        try:  # the texts meet the rules of every other route
            PredictRequest.model_validate({"texts": texts, "explain": plan.explain})
        except ValidationError as exc:
            raise invalid_input(_as_tensor_errors(exc)) from None
        classifier, predictions = self._classify(texts, ref, plan.explain, "v2")
        answer, raw = v2.response(request, plan, classifier, predictions)
        document = answer.model_dump(mode="json", exclude_none=True)
        if not raw:
            return Response(200, content_types.APPLICATION_JSON, document)
        header = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
        # Base64 already: Powertools would pass a bytes body through its JSON encoder first.
        binary = Response(
            200,
            "application/octet-stream",
            base64.b64encode(header + raw).decode("ascii"),
            headers={"Inference-Header-Content-Length": str(len(header))},
        )
        binary.base64_encoded = True
        return binary

    # ------------------------------------------------------------------------------ errors
    def _error(self, error: MaasError, oip: bool | None = None) -> Response[dict[str, Any]]:
        """The answer to an error: `{"error": {"code", "message"}}`, or on the Open Inference
        routes the protocol's `{"error": "message"}` (a bad request there is a 400)."""
        if oip is None:
            oip = self._is_v2(self.app.current_event.path)
        status = status_of(error)
        if oip and status == HTTPStatus.UNPROCESSABLE_ENTITY:
            status = HTTPStatus.BAD_REQUEST
        if status < 500:
            self.metrics.add_metric("ClientErrors", MetricUnit.Count, 1)
            self.logger.info("request rejected", status=status.value, code=str(error.code))
            body = error_body(error)
            message = error.message
        else:
            # Our failure: the details (store URIs, endpoints) go to the log, not to the client.
            self.metrics.add_metric("ServerErrors", MetricUnit.Count, 1)
            self.logger.error(
                "request failed", status=status.value, code=str(error.code), error=error.message
            )
            message = _SERVER_MESSAGES.get(error.code, "internal error; see the function's log")
            body = {"error": {"code": str(error.code), "message": message}}
        if oip:
            return Response(
                status.value,
                content_types.APPLICATION_JSON,
                {"error": message},
                headers={v2.ERROR_CODE_HEADER: str(error.code)},
            )
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
