"""maas.client as a Python user meets it: against `maas serve` (the same handler the Lambda
runs), its retries and backoff on a transport that fails on purpose, SigV4 signatures checked
by botocore, bearer tokens, and an import that needs neither numpy nor TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import REVIEWS, Server, free_port, maas_serve, open_store, sample_rows

from maas.client import ApiError, BearerToken, Client, SigV4

TEXTS = ["房间很干净，服务也很好，下次还会再来", "太吵了，根本没法睡觉", "物流很快，非常满意"]


@pytest.fixture(scope="module")
def server(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("client") / "store"
    open_store(root).publish(trained_model, "reviews", alias="production")
    with maas_serve(root, tmp_path_factory.mktemp("client-cache")) as running:
        yield running


def raw_predict(server: Server, body: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.post(f"{server.url}/models/reviews/predict", json=body)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_predict_is_the_apis_answer_typed(server: Server) -> None:
    with Client(server.url, model="reviews") as api:
        result = api.predict(TEXTS)
        one = api.predict(TEXTS[0])
    raw = raw_predict(server, {"texts": TEXTS})
    assert (result.name, result.version) == (raw["model"]["name"], raw["model"]["version"])
    assert result.labels == [p["label"] for p in raw["predictions"]]
    assert [p.scores for p in result] == [p["scores"] for p in raw["predictions"]]
    assert one[0] == result[0] and len(result) == 3


def test_explain_describe_models_health(server: Server) -> None:
    with Client(server.url) as api:
        explained = api.explain(TEXTS[0], model="reviews@production")
        info = api.describe("reviews")
        models = api.models()
        health = api.health()
    explanation = explained[0].explanation
    assert explanation is not None and explanation["label"] == explained[0].label
    assert all(0 <= t["start"] < t["end"] <= len(TEXTS[0]) for t in explanation["tokens"])
    assert (info["name"], info["labels"]) == ("reviews", ["negative", "positive"])
    assert [m["name"] for m in models] == ["reviews"] and health["status"] == "ok"


def test_predict_all_sends_any_number_in_requests_the_api_accepts(server: Server) -> None:
    texts = [row["text"] for row in sample_rows(REVIEWS, 75)]  # 150 real reviews
    requests: list[int] = []

    def count(request: httpx.Request) -> None:
        requests.append(len(json.loads(request.content)["texts"]))

    with Client(server.url, model="reviews") as api:
        api._http.event_hooks["request"].append(count)
        predictions = list(api.predict_all(texts))
        with pytest.raises(ApiError) as refused:  # one request of 150 is over the limit
            api.predict(texts)
    assert requests == [64, 64, 22, 150]
    assert [p.label for p in predictions] == [
        p["label"] for chunk in range(0, 150, 64)
        for p in raw_predict(server, {"texts": texts[chunk : chunk + 64]})["predictions"]
    ]  # fmt: skip
    assert (refused.value.status, refused.value.code) == (422, "too_many_texts")


def test_a_refusal_is_one_error_with_the_apis_code_and_is_not_retried(server: Server) -> None:
    sent: list[str] = []
    with Client(server.url, retries=3) as api:
        api._http.event_hooks["request"].append(lambda request: sent.append(request.url.path))
        with pytest.raises(ApiError) as missing:
            api.predict("好", model="reviw")
        with pytest.raises(ApiError) as long:
            api.predict("好" * 10_001, model="reviews")
        with pytest.raises(ValueError, match="no model"):
            api.predict("好")
    assert (missing.value.status, missing.value.code) == (404, "model_not_found")
    assert "did you mean 'reviews'" in missing.value.message
    assert (long.value.status, long.value.code) == (422, "text_too_long")
    assert long.value.details["limit"] == 10_000
    assert len(sent) == 2  # no retries for a client's mistake


# ------------------------------------------------------------------------ retries, backoff
PREDICTED = {
    "model": {"name": "reviews", "version": "3"},
    "predictions": [{"label": "positive", "score": 0.9, "scores": {"positive": 0.9}}],
}


def scripted(*answers: httpx.Response | Exception) -> tuple[httpx.MockTransport, list[str]]:
    queue, seen = list(answers), []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handle), seen


def test_throttling_and_unavailability_are_retried_with_backoff() -> None:
    transport, seen = scripted(
        httpx.Response(503, json={"error": {"code": "store_error", "message": "retry"}}),
        httpx.ConnectError("refused"),
        httpx.Response(429, headers={"Retry-After": "2"}, json={"message": "Too Many Requests"}),
        httpx.Response(200, json=PREDICTED),
    )
    waits: list[float] = []
    api = Client("https://x.test", model="m", transport=transport, sleep=waits.append, backoff=0.5)
    assert api.predict("好").version == "3"
    assert len(seen) == 4
    assert 0.25 <= waits[0] <= 0.5 and 0.5 <= waits[1] <= 1.0 and waits[2] == 2.0


def test_retries_end_with_the_last_error() -> None:
    transport, seen = scripted(*[httpx.Response(502, text="Bad Gateway")] * 3)
    api = Client("https://x.test", model="m", transport=transport, retries=2, sleep=lambda _: None)
    with pytest.raises(ApiError) as error:
        api.predict("好")
    assert (error.value.status, len(seen)) == (502, 3)
    transport, seen = scripted(httpx.Response(503, text=""))
    with pytest.raises(ApiError):
        Client("https://x.test", model="m", transport=transport, retries=0).predict("好")
    assert len(seen) == 1


def test_an_unreachable_api_is_an_error_not_a_hang() -> None:
    api = Client(f"http://127.0.0.1:{free_port()}", model="m", retries=1, sleep=lambda _: None)
    with pytest.raises(ApiError) as error:
        api.predict("好")
    assert error.value.status == 0 and error.value.code == "unreachable"


def test_open_inference_errors_keep_their_code() -> None:
    transport, _ = scripted(
        httpx.Response(400, headers={"X-Maas-Error-Code": "invalid_tensor"}, json={"error": "x"})
    )
    with pytest.raises(ApiError) as error:
        Client("https://x.test", transport=transport).describe("m")
    assert (error.value.code, error.value.message) == ("invalid_tensor", "x")


def test_bad_arguments_are_refused_at_once() -> None:
    for url in ("ftp://x", "localhost:8080", ""):
        with pytest.raises(ValueError, match="http"):
            Client(url)
    with pytest.raises(ValueError):
        Client("http://x", retries=-1)


# ----------------------------------------------------------------------------------- auth
def captured() -> tuple[httpx.MockTransport, list[httpx.Request]]:
    requests: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json=PREDICTED)

    return httpx.MockTransport(handle), requests


def test_sigv4_signs_with_the_boto3_credential_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.auth
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    transport, requests = captured()
    url = "https://abc123.execute-api.eu-west-1.amazonaws.com"
    Client(url, auth="iam", model="reviews", transport=transport).predict(["好", "差"])
    (sent,) = requests
    authorization = sent.headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=testing/")  # conftest's keys
    assert "/eu-west-1/execute-api/aws4_request" in authorization
    assert sent.headers["X-Amz-Security-Token"] == "testing"

    signed_at = datetime.strptime(sent.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: signed_at)

    def signature(body: bytes) -> str:  # botocore's own signature of what was sent
        request = AWSRequest(
            method=sent.method,
            url=str(sent.url),
            data=body,
            headers={"host": sent.url.host, "content-type": sent.headers["content-type"]},
        )
        credentials = Credentials("testing", "testing", "testing")
        SigV4Auth(credentials, "execute-api", "eu-west-1").add_auth(request)
        return str(request.headers["Authorization"])

    assert signature(sent.content) == authorization
    assert signature(sent.content + b" ") != authorization  # the body is signed


def test_sigv4_needs_a_region_it_can_find(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    transport, _ = captured()
    with pytest.raises(ApiError, match="region"):
        Client("https://api.example.com", auth=SigV4(), model="m", transport=transport).health()


def test_a_bearer_token_is_sent_fresh_on_every_request() -> None:
    transport, requests = captured()
    tokens = iter(["jwt-1", "jwt-2"])
    api = Client("https://x.test", auth=BearerToken(lambda: next(tokens)), transport=transport)
    api.predict("好", model="m")
    api.predict("好", model="m")
    assert [r.headers["Authorization"] for r in requests] == ["Bearer jwt-1", "Bearer jwt-2"]


def test_a_routing_key_keeps_a_caller_on_one_version() -> None:
    transport, requests = captured()
    Client("https://x.test", routing_key="user-42", transport=transport).predict("好", model="m")
    assert requests[0].headers["X-Maas-Routing-Key"] == "user-42"


def test_the_client_needs_neither_numpy_nor_tensorflow(server: Server) -> None:
    script = (
        "import sys\n"
        "sys.modules['numpy'] = None\n"  # any import of numpy now fails
        "sys.modules['tensorflow'] = None\n"
        "from maas.client import Client\n"
        f"print(Client({server.url!r}).predict('很好', model='reviews').labels[0])\n"
    )
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() in ("positive", "negative")
