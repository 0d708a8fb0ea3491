"""`sam local start-api` on 127.0.0.1: real HTTP requests through SAM's API Gateway emulator
to warm containers (started once per session), for the same contract as the invoke tests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from sam import samlocal

pytestmark = pytest.mark.sam

HTTP_EVENTS = samlocal.EVENTS / "http"


def call(api: samlocal.Api, event: str) -> tuple[int, dict[str, Any], str]:
    """Send the request a committed API Gateway event describes: method, path, body."""
    ev = json.loads((HTTP_EVENTS / f"{event}.json").read_text(encoding="utf-8"))
    content_type = ev["headers"].get("content-type")
    return request(
        api, ev["requestContext"]["http"]["method"], ev["rawPath"], ev.get("body"), content_type
    )


def request(
    api: samlocal.Api,
    method: str,
    path: str,
    body: str | None = None,
    content_type: str | None = None,
) -> tuple[int, dict[str, Any], str]:
    headers = {"accept": "application/json"} | (
        {"content-type": content_type} if content_type else {}
    )
    data = body.encode("utf-8") if body is not None else None
    req = urllib.request.Request(api.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, json.loads(response.read()), response.headers["content-type"]
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers["content-type"]


def test_predict_one(api: samlocal.Api) -> None:
    status, body, content_type = call(api, "predict-one")
    assert (status, content_type) == (200, "application/json"), body
    assert body["model"] == {"name": "reviews", "version": "1"}
    assert body["predictions"][0]["label"] == "positive"


def test_predict_many(api: samlocal.Api) -> None:
    status, body, _ = call(api, "predict-many")
    assert status == 200, body
    assert [p["label"] for p in body["predictions"]] == [
        "positive",
        "negative",
        "negative",
        "positive",
    ]


@pytest.mark.parametrize(("event", "status", "code"), samlocal.BAD_INPUT_EVENTS)
def test_bad_input(api: samlocal.Api, event: str, status: int, code: str) -> None:
    got, body, content_type = call(api, event)
    assert (got, body["error"]["code"], content_type) == (status, code, "application/json"), body


def test_a_body_that_is_not_json_is_415(api: samlocal.Api) -> None:
    status, body, _ = request(api, "POST", "/models/reviews/predict", "text=很好", "text/plain")
    assert (status, body["error"]["code"]) == (415, "unsupported_media_type"), body


def test_health_reports_the_loaded_model(api: samlocal.Api) -> None:
    status, body, _ = call(api, "health")
    assert (status, body) == (
        200,
        {"status": "ok", "model": "reviews", "loaded": True, "version": "1"},
    )


def test_get_model_describes_the_published_version(api: samlocal.Api) -> None:
    status, body, _ = call(api, "get-model")
    assert status == 200, body
    assert (body["name"], body["version"], body["labels"]) == (
        "reviews",
        "1",
        ["negative", "positive"],
    )
    assert body["runtime"].startswith("tflite-runtime 2.14")


def test_an_unknown_path_is_a_json_404(api: samlocal.Api) -> None:
    status, body, content_type = request(api, "GET", "/no/such/path")
    assert (status, body["error"]["code"], content_type) == (
        404,
        "route_not_found",
        "application/json",
    )


def test_a_wrong_method_is_a_json_405(api: samlocal.Api) -> None:
    status, body, _ = request(api, "GET", "/models/reviews/predict")
    assert (status, body["error"]["code"]) == (405, "method_not_allowed"), body


def test_the_openapi_document_is_served(api: samlocal.Api) -> None:
    status, doc, _ = request(api, "GET", "/openapi.json")
    assert status == 200
    assert "/models/{name}/predict" in doc["paths"]


def many_texts() -> list[str]:
    event = json.loads((HTTP_EVENTS / "predict-many.json").read_text(encoding="utf-8"))
    texts: list[str] = json.loads(event["body"])["texts"]
    return texts


def test_the_python_client_through_the_local_api(api: samlocal.Api) -> None:
    from maas.client import ApiError, Client

    with Client(api.url, model="reviews", timeout=60) as client:
        result = client.predict(many_texts())
        explained = client.explain(many_texts()[0])
        info = client.describe()
        with pytest.raises(ApiError) as refused:
            client.predict("好" * 10_001)
    assert (result.name, result.version) == ("reviews", "1")
    assert result.labels == ["positive", "negative", "negative", "positive"]
    explanation = explained[0].explanation
    assert explanation is not None and explanation["tokens"]
    assert info["runtime"].startswith("tflite-runtime 2.14")
    assert (refused.value.status, refused.value.code) == (422, "text_too_long")


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_tritonclient_through_the_local_api(api: samlocal.Api, binary: bool) -> None:
    """The Open Inference Protocol through SAM's API Gateway emulator, binary bodies included
    (API Gateway hands them to the function base64-encoded)."""
    import numpy as np
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url=api.url.removeprefix("http://"), network_timeout=60)
    assert client.is_server_live() and client.is_model_ready("reviews")
    text = triton.InferInput("text", [4], "BYTES")
    text.set_data_from_numpy(np.array(many_texts(), dtype=np.object_), binary_data=binary)
    label = triton.InferRequestedOutput("label", binary_data=binary)
    result = client.infer("reviews", [text], outputs=[label])
    labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label")]
    assert labels == ["positive", "negative", "negative", "positive"]
    assert result.get_response()["model_version"] == "1"
