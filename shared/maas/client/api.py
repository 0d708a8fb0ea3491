"""A small typed Python client of a maas HTTP API: a deployed stack, `sam local start-api` or
`maas serve` all answer it the same way.

    from maas.client import Client

    with Client("https://abc123.execute-api.eu-west-1.amazonaws.com", auth="iam") as api:
        result = api.predict(["房间很干净", "太吵了"], model="reviews")
        print(result.version, [p.label for p in result])

What it does for you: JSON in and out, a typed answer (`Predictions` of `Prediction`), one
`ApiError` with the API's stable `code` for every refusal, retries with exponential backoff
and jitter on 429, 502, 503 and 504 and on connection failures (honouring `Retry-After`),
timeouts, SigV4 signing with the boto3 credential chain (`auth="iam"`, for `ApiAuth=iam`),
a bearer token (`auth=BearerToken(jwt)`, for `ApiAuth=jwt`), a routing key (one caller, one
version of a canaried alias), and `predict_all` to send any number of texts in requests the
API accepts. It needs httpx (and botocore for SigV4 only); no numpy, no TensorFlow.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias
from urllib.parse import quote, urlparse

import httpx

from maas import __version__

RETRY_STATUSES = frozenset({429, 502, 503, 504})
DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 3
# The HTTP function's default limit on texts a request (MAAS_MAX_TEXTS_PER_REQUEST).
DEFAULT_BATCH = 64
ROUTING_HEADER = "X-Maas-Routing-Key"


class ApiError(Exception):
    """The API refused a request (or never answered): `status` (0: no answer), `code` (the
    API's stable error code), `message`, `details`."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}" if status else message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status in RETRY_STATUSES

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        try:
            error = response.json().get("error")
        except ValueError:
            error = None
        if isinstance(error, dict):  # the native routes: {"error": {"code", "message"}}
            return cls(
                response.status_code,
                str(error.get("code", "")),
                str(error.get("message", "")),
                error.get("details"),
            )
        code = response.headers.get("x-maas-error-code", "")  # the Open Inference routes
        message = str(error) if error else response.reason_phrase or "no message"
        return cls(response.status_code, code, message)


# -------------------------------------------------------------------------------- answers
@dataclass(frozen=True)
class Prediction:
    label: str
    score: float
    scores: dict[str, float]
    explanation: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Prediction:
        return cls(doc["label"], float(doc["score"]), dict(doc["scores"]), doc.get("explanation"))


@dataclass(frozen=True)
class Predictions(Sequence[Prediction]):
    """The answer to one request: the model and version that gave it, in the texts' order."""

    name: str
    version: str
    predictions: tuple[Prediction, ...] = field(repr=False)

    def __len__(self) -> int:
        return len(self.predictions)

    def __getitem__(self, index: Any) -> Any:
        return self.predictions[index]

    @property
    def labels(self) -> list[str]:
        return [p.label for p in self.predictions]


# ---------------------------------------------------------------------------------- auth
class BearerToken(httpx.Auth):
    """`Authorization: Bearer <token>` (a JWT for `ApiAuth=jwt`); `token` may be a callable
    that returns a fresh token, called for every request."""

    def __init__(self, token: str | Callable[[], str]) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._token() if callable(self._token) else self._token
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


class SigV4(httpx.Auth):
    """AWS Signature Version 4 for an IAM-protected API (`ApiAuth=iam`), with the credentials
    boto3 finds (environment, profile, SSO, instance or task role). `region`: the API's (by
    default read from an execute-api URL, else the session's)."""

    requires_request_body = True

    def __init__(
        self, region: str | None = None, service: str = "execute-api", session: Any = None
    ) -> None:
        import botocore.session  # only SigV4 needs botocore

        self._session = session or botocore.session.get_session()
        self._region = region
        self._service = service

    def _region_of(self, host: str) -> str:
        if self._region:
            return self._region
        parts = host.split(".")
        if len(parts) > 3 and parts[1] == self._service:  # <id>.execute-api.<region>.amazonaws
            return parts[2]
        region = self._session.get_config_variable("region")
        if not region:
            raise ApiError(0, "configuration_error", "SigV4 needs a region: pass region=...")
        return str(region)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        credentials = self._session.get_credentials()
        if credentials is None:
            raise ApiError(0, "configuration_error", "SigV4: boto3 found no AWS credentials")
        signed = AWSRequest(
            method=request.method,
            url=str(request.url),
            data=request.content,
            headers={"host": request.url.netloc.decode("ascii")}
            | {k: v for k, v in request.headers.items() if k.lower() == "content-type"},
        )
        region = self._region_of(request.url.host)
        SigV4Auth(credentials.get_frozen_credentials(), self._service, region).add_auth(signed)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in signed.headers:
                request.headers[name] = signed.headers[name]
        yield request


Auth: TypeAlias = httpx.Auth | Literal["iam"] | None


# -------------------------------------------------------------------------------- client
class Client:
    """The maas HTTP API at `url` (its base: `https://…/`, `http://127.0.0.1:8080`).

    `model`: the default model reference for every call (NAME, NAME@ALIAS, NAME:VERSION);
    none: the function's default. `retries`: how many times a retryable failure is retried
    (0: never); the waits double from `backoff` seconds up to `max_backoff`, with jitter."""

    def __init__(
        self,
        url: str,
        *,
        auth: Auth = None,
        model: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = 0.25,
        max_backoff: float = 8.0,
        routing_key: str | None = None,
        headers: dict[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"not an http(s) URL: {url!r}")
        if retries < 0 or backoff < 0 or timeout <= 0:
            raise ValueError("retries and backoff must be >= 0, timeout > 0")
        self.model = model
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        base_headers = {"User-Agent": f"maas-client/{__version__}", "Accept": "application/json"}
        if routing_key:
            base_headers[ROUTING_HEADER] = routing_key
        self._http = httpx.Client(
            base_url=url.rstrip("/") + "/",
            auth=SigV4() if auth == "iam" else auth,
            timeout=timeout,
            headers=base_headers | (headers or {}),
            transport=transport,
        )

    # -- the API ---------------------------------------------------------------------------
    def predict(
        self, texts: str | Sequence[str], *, model: str | None = None, explain: bool = False
    ) -> Predictions:
        """Classify one text or several (at most the API's limit a request: see
        `predict_all` for more)."""
        body: dict[str, Any] = {"text": texts} if isinstance(texts, str) else {"texts": list(texts)}
        if explain:
            body["explain"] = True
        doc = self._call("POST", f"models/{self._ref(model)}/predict", body)
        return Predictions(
            doc["model"]["name"],
            doc["model"]["version"],
            tuple(Prediction.from_dict(p) for p in doc["predictions"]),
        )

    def explain(self, texts: str | Sequence[str], *, model: str | None = None) -> Predictions:
        """`predict` with each prediction explained: every token's span and contribution."""
        return self.predict(texts, model=model, explain=True)

    def predict_all(
        self,
        texts: Iterable[str],
        *,
        model: str | None = None,
        batch_size: int = DEFAULT_BATCH,
        explain: bool = False,
    ) -> Iterator[Prediction]:
        """Any number of texts, `batch_size` a request, predictions in the texts' order.
        (For millions of texts, the queue is cheaper: `maas batch submit`.)"""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        chunk: list[str] = []
        for text in texts:
            chunk.append(text)
            if len(chunk) == batch_size:
                yield from self.predict(chunk, model=model, explain=explain)
                chunk = []
        if chunk:
            yield from self.predict(chunk, model=model, explain=explain)

    def describe(self, model: str | None = None) -> dict[str, Any]:
        """The version a reference resolves to: labels, metrics, runtime, dates."""
        info: dict[str, Any] = self._call("GET", f"models/{self._ref(model)}")
        return info

    def models(self) -> list[dict[str, Any]]:
        """Every model the API serves: versions, aliases and the default version."""
        models: list[dict[str, Any]] = self._call("GET", "models")["models"]
        return models

    def health(self) -> dict[str, Any]:
        health: dict[str, Any] = self._call("GET", "health")
        return health

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------------------
    def _ref(self, model: str | None) -> str:
        ref = model or self.model
        if not ref:
            raise ValueError("no model: pass model=... here or to Client(...)")
        return quote(ref, safe="")

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, json=body)
            except httpx.TransportError as exc:
                error = ApiError(0, "unreachable", f"{type(exc).__name__}: {exc}")
                wait = None
            else:
                if response.is_success:
                    return response.json()
                error = ApiError.from_response(response)
                wait = _retry_after(response)
            if not error.retryable or attempt >= self.retries:
                raise error
            delay = min(self.max_backoff, self.backoff * 2**attempt)
            self._sleep(
                min(self.max_backoff, wait)
                if wait is not None
                else random.uniform(delay / 2, delay)
            )
            attempt += 1


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


__all__ = [
    "ApiError",
    "BearerToken",
    "Client",
    "Prediction",
    "Predictions",
    "SigV4",
]
