"""The Open Inference Protocol (KServe V2) as the ecosystem's own clients speak it: Triton's
`tritonclient.http`, KServe's `InferenceRESTClient` and the protocol's generated OpenAPI client
(`open-inference-openapi`) against `maas serve`, each answer compared with the native route's,
and the protocol's rules and errors through the handler itself."""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import Server, maas_serve, open_store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maas.local.gateway import to_event
from maas.local.lambda_runtime import lambda_context, load_function

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

TEXTS = ["房间很干净，服务也很好，下次还会再来", "太吵了，根本没法睡觉", "物流很快，非常满意"]


@pytest.fixture(scope="module")
def store(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("v2") / "store"
    store = open_store(root)
    store.publish(trained_model, "reviews", alias="production")
    store.publish(trained_model, "reviews", alias="staging")
    return root


@pytest.fixture(scope="module")
def server(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with maas_serve(store, tmp_path_factory.mktemp("v2-cache")) as running:
        yield running


@pytest.fixture(scope="module")
def native(server: Server) -> dict[str, Any]:
    """What `POST /models/reviews/predict` answers for TEXTS."""
    import httpx

    answer = httpx.post(f"{server.url}/models/reviews/predict", json={"texts": TEXTS})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def native_probabilities(native: dict[str, Any], labels: list[str]) -> np.ndarray[Any, Any]:
    return np.array([[p["scores"][label] for label in labels] for p in native["predictions"]])


def decoded(value: Any) -> str:
    """A BYTES element as a client hands it over: bytes from binary data, str from JSON."""
    return value.decode() if isinstance(value, bytes) else str(value)


def host(server: Server) -> str:
    return server.url.removeprefix("http://")


# ------------------------------------------------------------------------------ tritonclient
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_tritonclient_gets_the_native_answer(
    server: Server, native: dict[str, Any], binary: bool
) -> None:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url=host(server))
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("reviews") and client.is_model_ready("reviews", "2")
    assert not client.is_model_ready("no-such-model")
    metadata = client.get_model_metadata("reviews")
    labels = json.loads(metadata["properties"]["labels"])
    assert metadata["versions"] == ["1", "2"] and metadata["platform"] == "tflite"
    assert metadata["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data", "classification"]

    text = triton.InferInput("text", [len(TEXTS)], "BYTES")
    text.set_data_from_numpy(np.array(TEXTS, dtype=np.object_), binary_data=binary)
    outputs = [
        triton.InferRequestedOutput("label", binary_data=binary),
        triton.InferRequestedOutput("probabilities", binary_data=binary),
    ]
    result = client.infer("reviews", [text], outputs=outputs, request_id="req-7")

    response = result.get_response()
    assert (response["model_name"], response["model_version"], response["id"]) == (
        "reviews",
        "1",  # production
        "req-7",
    )
    got = [decoded(label) for label in result.as_numpy("label")]
    assert got == [p["label"] for p in native["predictions"]]
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (len(TEXTS), len(labels))
    np.testing.assert_allclose(probabilities, native_probabilities(native, labels), atol=1e-6)


def test_tritonclient_without_outputs_gets_all_in_binary(server: Server) -> None:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url=host(server))
    text = triton.InferInput("text", [1, 1], "BYTES")
    text.set_data_from_numpy(np.array([[TEXTS[0]]], dtype=np.object_))
    result = client.infer("reviews", [text], model_version="staging")
    assert result.get_response()["model_version"] == "2"
    assert {o["name"] for o in result.get_response()["outputs"]} == {
        "label",
        "score",
        "probabilities",
    }
    assert all("binary_data_size" in o["parameters"] for o in result.get_response()["outputs"])
    assert result.as_numpy("score")[0] == pytest.approx(result.as_numpy("probabilities")[0].max())


def test_tritonclient_classification_extension(server: Server, native: dict[str, Any]) -> None:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url=host(server))
    text = triton.InferInput("text", [len(TEXTS)], "BYTES")
    text.set_data_from_numpy(np.array(TEXTS, dtype=np.object_))
    top = triton.InferRequestedOutput("probabilities", class_count=1)
    result = client.infer("reviews", [text], outputs=[top])
    entries = [decoded(row[0]).split(":") for row in result.as_numpy("probabilities")]
    assert [label for _, _, label in entries] == [p["label"] for p in native["predictions"]]
    for (score, _, _), prediction in zip(entries, native["predictions"], strict=True):
        assert float(score) == pytest.approx(prediction["score"], abs=1e-6)


def test_tritonclient_sees_the_protocols_errors(server: Server) -> None:
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    client = triton.InferenceServerClient(url=host(server))
    wrong = triton.InferInput("INPUT0", [1], "BYTES")
    wrong.set_data_from_numpy(np.array(["好"], dtype=np.object_))
    with pytest.raises(InferenceServerException, match="unknown input 'INPUT0'") as error:
        client.infer("reviews", [wrong])
    assert error.value.status() == "400"
    text = triton.InferInput("text", [1], "BYTES")
    text.set_data_from_numpy(np.array(["好"], dtype=np.object_))
    with pytest.raises(
        InferenceServerException, match="no model named 'reviw'; did you mean 'reviews'"
    ) as error:
        client.infer("reviw", [text])
    assert error.value.status() == "404"


# ----------------------------------------------------------------------------------- kserve
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_the_kserve_client_gets_the_native_answer(
    server: Server, native: dict[str, Any], binary: bool
) -> None:
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

    async def run() -> Any:
        client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
        try:
            assert await client.is_server_live(server.url)
            assert await client.is_server_ready(server.url)
            assert await client.is_model_ready(server.url, "reviews")
            text = InferInput("text", [len(TEXTS)], "BYTES")
            text.set_data_from_numpy(np.array(TEXTS, dtype=np.object_), binary_data=binary)
            request = InferRequest(model_name="reviews", infer_inputs=[text], request_id="k-1")
            return await client.infer(server.url, request, model_name="reviews")
        finally:
            await client.close()

    response = asyncio.run(run())
    # (kserve's InferResponse.from_bytes keeps no model_version: the other clients check it)
    assert (response.model_name, response.id) == ("reviews", "k-1")
    outputs = {output.name: output for output in response.outputs}
    labels = [decoded(label) for label in outputs["label"].data]
    assert labels == [p["label"] for p in native["predictions"]]
    order = json.loads(outputs["probabilities"].parameters["labels"])
    probabilities = np.asarray(outputs["probabilities"].as_numpy(), dtype=np.float64)
    np.testing.assert_allclose(
        probabilities.reshape(len(TEXTS), -1), native_probabilities(native, order), atol=1e-6
    )


# ------------------------------------------------------- the protocol's own OpenAPI client
def test_the_open_inference_openapi_client_parses_every_answer(
    server: Server, native: dict[str, Any]
) -> None:
    """The protocol working group's generated client validates each answer against the
    protocol's types (pydantic models of its OpenAPI document)."""
    from open_inference.openapi.client import OpenInferenceClient
    from open_inference.openapi.core.api_error import ApiError
    from open_inference.openapi.types import InferenceRequest

    client = OpenInferenceClient(base_url=server.url)
    client.check_server_liveness()
    client.check_server_readiness()
    client.check_model_readiness("reviews")
    client.check_model_version_readiness("reviews", "2")
    assert client.read_server_metadata().name == "maas"
    metadata = client.read_model_version_metadata("reviews", "production")
    assert metadata.properties and metadata.properties["version"] == "1"
    request = InferenceRequest.parse_obj(
        {
            "id": "oip-1",
            "parameters": {"explain": True},
            "inputs": [{"name": "text", "shape": [len(TEXTS)], "datatype": "BYTES", "data": TEXTS}],
            "outputs": [{"name": "label"}, {"name": "explanation"}],
        }
    )
    response = client.model_infer("reviews", request=request)
    assert response.id == "oip-1" and [o.name for o in response.outputs] == ["label", "explanation"]
    labels = response.outputs[0].data.__root__
    assert labels == [p["label"] for p in native["predictions"]]
    for raw, text in zip(response.outputs[1].data.__root__, TEXTS, strict=True):
        explanation = json.loads(str(raw))
        assert explanation["method"] == "leave-one-out"
        assert all(0 <= t["start"] < t["end"] <= len(text) for t in explanation["tokens"])
    bad = InferenceRequest.parse_obj(
        {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["只有一个"]}]}
    )
    with pytest.raises(ApiError) as error:
        client.model_infer("reviews", request=bad)
    assert error.value.status_code == 400
    assert "shape [2] says 2 texts; data has 1" in error.value.body["error"]


# ------------------------------------------------------------------- through the handler
def handler(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("MAAS_STORE", str(store))
    monkeypatch.setenv("MAAS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MAAS_MODEL_NAME", "reviews")
    return load_function("http").handler


def call(
    handle: Any,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    headers = {"content-type": "application/json"} | (headers or {}) if body else headers or {}
    event = to_event(method, path, "", list(headers.items()), body)
    result = handle(event, lambda_context())
    raw = result.get("body") or ""
    data = json.loads(raw) if raw and not result.get("isBase64Encoded") else raw
    return result["statusCode"], result["headers"], data


def infer_body(data: list[Any], **extra: Any) -> bytes:
    request = {
        "inputs": [{"name": "text", "shape": [len(data)], "datatype": "BYTES", "data": data}]
    }
    return json.dumps(request | extra).encode()


BAD_REQUESTS = [
    (infer_body(["好"], outputs=[{"name": "logits"}]), "invalid_tensor", "unknown output 'logits'"),
    (infer_body([1]), "invalid_tensor", "inputs[0].data[0] must be a string"),
    (infer_body(["  "]), "empty_text", "inputs[0].data[0]"),
    (infer_body(["好" * 10_001]), "text_too_long", "inputs[0].data[0]"),
    (infer_body(["好"] * 65), "too_many_texts", "65 texts; the limit is 64"),
    (
        infer_body(["好"] * 17, parameters={"explain": True}),
        "too_many_explained_texts",
        "limited to 16",
    ),
    (infer_body(["好"], parameters={"explain": "yes"}), "invalid_tensor", "true or false"),
    (b'{"inputs": []}', "invalid_input", "inputs"),
    (b'{"inputs": [{"name": "text"}]}', "invalid_input", "shape"),
    (b'{"inputs": "text"', "invalid_json", "not valid JSON"),
    (b"[1]", "wrong_type", "JSON object"),
    (
        json.dumps(
            {"inputs": [{"name": "text", "shape": [1], "datatype": "FP32", "data": [1.0]}]}
        ).encode(),
        "invalid_tensor",
        "must be BYTES",
    ),
]


@pytest.mark.parametrize(("body", "code", "message"), BAD_REQUESTS, ids=lambda v: str(v)[:30])
def test_a_bad_inference_request_is_the_protocols_400(
    store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    body: bytes,
    code: str,
    message: str,
) -> None:
    handle = handler(store, tmp_path, monkeypatch)
    status, headers, answer = call(handle, "POST", "/v2/models/reviews/infer", body)
    assert (status, headers.get("X-Maas-Error-Code")) == (400, code), answer
    assert set(answer) == {"error"} and message in answer["error"], answer


def test_names_versions_and_aliases(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handle = handler(store, tmp_path, monkeypatch)
    for path, version in [
        ("/v2/models/reviews/infer", "1"),
        ("/v2/models/reviews@staging/infer", "2"),
        ("/v2/models/reviews%3A2/infer", "2"),
        ("/v2/models/reviews/versions/2/infer", "2"),
        ("/v2/models/reviews/versions/production/infer", "1"),
    ]:
        status, _, answer = call(handle, "POST", path, infer_body(["好"]))
        assert (status, answer.get("model_version")) == (200, version), (path, answer)
    status, headers, answer = call(
        handle, "POST", "/v2/models/reviews@staging/versions/1/infer", infer_body(["好"])
    )
    assert (status, headers["X-Maas-Error-Code"]) == (400, "invalid_model_reference"), answer
    status, _, answer = call(handle, "GET", "/v2/models/reviews/versions/9")
    assert status == 404 and "no version 9" in answer["error"], answer
    status, _, answer = call(handle, "DELETE", "/v2/models/reviews")
    assert status == 405 and set(answer) == {"error"}, answer
    status, _, answer = call(handle, "GET", "/v2/nowhere")
    assert status == 404 and set(answer) == {"error"}, answer


def test_binary_requests_are_checked_like_json_ones(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handle = handler(store, tmp_path, monkeypatch)

    def binary(elements: bytes, header: dict[str, Any], length: int | None = None) -> Any:
        head = json.dumps(header).encode()
        size = str(len(head) if length is None else length)
        return call(
            handle,
            "POST",
            "/v2/models/reviews/infer",
            head + elements,
            {"content-type": "application/octet-stream", "inference-header-content-length": size},
        )

    def tensor(size: int, shape: list[int] | None = None) -> dict[str, Any]:
        spec = {"name": "text", "shape": shape or [1], "datatype": "BYTES"}
        return {"inputs": [spec | {"parameters": {"binary_data_size": size}}]}

    good = struct.pack("<I", 3) + "好".encode()
    status, _, answer = binary(good, tensor(len(good)))
    assert status == 200 and answer["outputs"][0]["data"] in (["positive"], ["negative"])
    for elements, header, length, message in [
        (good, tensor(len(good)), 10_000, "the body has"),
        (good, tensor(len(good)), 0, "the body has"),
        (good[:5], tensor(5), None, "longer than its binary data"),
        (b"\x01\x00", tensor(2), None, "ends inside an element's length"),
        (struct.pack("<I", 2) + b"\xff\xfe", tensor(6), None, "not UTF-8"),
        (good + b"x", tensor(len(good)), None, "1 bytes after"),
        (good, tensor(len(good) + 1), None, "runs past the end"),
    ]:
        status, headers, answer = binary(elements, header, length)
        assert (status, headers.get("X-Maas-Error-Code")) == (400, "invalid_tensor"), answer
        assert message in answer["error"], (message, answer)
    status, _, answer = binary(good, {"inputs": "x"})
    assert status == 400 and "must be an object with 'inputs'" in answer["error"]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.binary(max_size=300),
    header=st.one_of(st.integers(min_value=-5, max_value=400).map(str), st.text(max_size=6)),
)
def test_no_binary_body_gets_a_500(
    store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    body: bytes,
    header: str,
) -> None:
    handle = handler(store, tmp_path, monkeypatch)
    status, _, answer = call(
        handle,
        "POST",
        "/v2/models/reviews/infer",
        body,
        {"content-type": "application/octet-stream", "inference-header-content-length": header},
    )
    assert status < 500, answer
    assert status == 200 or set(answer) == {"error"}


def test_the_openapi_document_describes_the_protocol(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openapi_spec_validator import validate

    handle = handler(store, tmp_path, monkeypatch)
    status, _, document = call(handle, "GET", "/openapi.json")
    assert status == 200
    validate(document)
    paths = document["paths"]
    for path in (
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/{name}",
        "/v2/models/{name}/ready",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer",
    ):
        assert path in paths, path
    infer = paths["/v2/models/{name}/infer"]["post"]
    assert "requestBody" in infer and "400" in infer["responses"]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    texts=st.lists(
        st.text(min_size=1, max_size=40).filter(lambda t: t.strip()), min_size=1, max_size=8
    ),
    nested=st.booleans(),
    binary=st.booleans(),
)
def test_every_valid_inference_request_is_answered(
    store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    texts: list[str],
    nested: bool,
    binary: bool,
) -> None:
    """What schemathesis cannot generate (a shape that counts its data): valid requests,
    JSON or binary, flat or [N, 1], each answered with N labels and probabilities that sum
    to 1."""
    handle = handler(store, tmp_path, monkeypatch)
    shape = [len(texts), 1] if nested else [len(texts)]
    tensor: dict[str, Any] = {"name": "text", "shape": shape, "datatype": "BYTES"}
    if binary:
        raw = b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in texts)
        header = json.dumps({"inputs": [tensor | {"parameters": {"binary_data_size": len(raw)}}]})
        body, headers = header.encode() + raw, {"inference-header-content-length": str(len(header))}
    else:
        data: list[Any] = [[t] for t in texts] if nested else texts
        body, headers = json.dumps({"inputs": [tensor | {"data": data}]}).encode(), {}
    status, _, answer = call(handle, "POST", "/v2/models/reviews/infer", body, headers)
    assert status == 200, answer
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert outputs["label"]["shape"] == [len(texts)] and len(outputs["label"]["data"]) == len(texts)
    probabilities = np.asarray(outputs["probabilities"]["data"]).reshape(len(texts), -1)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
