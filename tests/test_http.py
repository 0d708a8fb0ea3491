"""The HTTP function (functions/http/app.py) called with API Gateway HTTP API events.

The committed events in events/http are replayed as they are, then varied. The model is a real
one (trained once per session on real reviews) published to a local store, or to S3 on moto
server for the store-outage tests.
"""

# Chinese text uses full-width punctuation; it is data, not a typo:

from __future__ import annotations

import base64
import copy
import csv
import io
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import open_store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maas.core import manifest as artifact
from maas.local.lambda_runtime import lambda_context, load_event, load_function
from maas.service.models import ModelService
from maas.store import ModelStore

REPO = Path(__file__).resolve().parent.parent
EVENTS = REPO / "events" / "http"
REVIEWS = REPO / "data" / "reviews-zh" / "reviews.csv"

Invoke = Callable[..., tuple[int, Any, dict[str, str]]]

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


# ---------------------------------------------------------------------------- helpers
def event(name: str) -> dict[str, Any]:
    return load_event("http", name)


def request(
    method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """A variation of the committed predict event: another method, path, body or headers."""
    ev = copy.deepcopy(event("predict-one"))
    ev["rawPath"] = ev["requestContext"]["http"]["path"] = path
    ev["requestContext"]["http"]["method"] = method
    ev["routeKey"] = ev["requestContext"]["routeKey"] = "$default"
    ev.pop("pathParameters", None)
    if body is None:
        ev.pop("body", None)
        ev["headers"].pop("content-type", None)
    else:
        ev["body"] = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    ev["headers"].update(headers or {})
    return ev


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def reviews(label: str, count: int, exclude: set[str]) -> list[str]:
    """Real reviews of one label that the session's model was not trained on."""
    with REVIEWS.open(encoding="utf-8", newline="") as handle:
        rows = [r["text"] for r in csv.DictReader(handle) if r["label"] == label]
    return [text for text in rows if text not in exclude and 10 <= len(text) <= 200][:count]


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def store_dir(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("http-store") / "store"
    open_store(root).publish(trained_model, "reviews", alias="production")
    return root


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, store_dir: Path, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.setenv("MAAS_STORE", str(store_dir))
    monkeypatch.setenv("MAAS_MODEL_NAME", "reviews")
    monkeypatch.setenv("MAAS_CACHE_DIR", str(tmp_path / "cache"))
    for name in (
        "MAAS_MODEL_ALIAS",
        "MAAS_MAX_TEXTS",
        "MAAS_MAX_TEXT_CHARS",
        "MAAS_ALIAS_TTL_SECONDS",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def invoker(module: ModuleType) -> Invoke:
    def invoke(ev: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        response = module.handler(ev, lambda_context())
        assert response["headers"]["Content-Type"] == "application/json"
        return response["statusCode"], json.loads(response["body"]), response["headers"]

    return invoke


@pytest.fixture
def app(env: pytest.MonkeyPatch) -> ModuleType:
    return load_function("http")


@pytest.fixture
def invoke(app: ModuleType) -> Invoke:
    return invoker(app)


def assert_error(result: tuple[int, Any, dict[str, str]], status: int, code: str) -> dict[str, Any]:
    got_status, body, _ = result
    assert (got_status, body["error"]["code"]) == (status, code), body
    assert set(body) == {"error"} and body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


# ------------------------------------------------------------------------ success paths
def test_predict_one_event_finds_a_positive_review(invoke: Invoke) -> None:
    status, body, _ = invoke(event("predict-one"))
    assert status == 200
    assert body["model"] == {"name": "reviews", "version": "1"}
    (prediction,) = body["predictions"]
    assert set(prediction) == {"label", "score", "scores"}
    assert prediction["label"] == "positive"
    assert set(prediction["scores"]) == {"negative", "positive"}
    assert prediction["score"] == prediction["scores"]["positive"] > 0.5
    assert prediction["scores"]["negative"] < 0.5


def test_predict_many_event_keeps_the_order_of_the_texts(invoke: Invoke) -> None:
    status, body, _ = invoke(event("predict-many"))
    assert status == 200
    labels = [p["label"] for p in body["predictions"]]
    assert labels == ["positive", "negative", "negative", "positive"]


def test_held_out_real_reviews_are_mostly_right(invoke: Invoke, reviews_sample: Path) -> None:
    """400 real reviews the model never saw, through the handler 64 at a time. The session's
    model is small (540 training texts); chance would be 0.50 +- 0.025 here."""
    with reviews_sample.open(encoding="utf-8", newline="") as handle:
        seen = {row["text"] for row in csv.DictReader(handle)}
    correct = total = 0
    for label in ("positive", "negative"):
        texts = reviews(label, 200, seen)
        for start in range(0, len(texts), 64):
            ev = request("POST", "/models/reviews/predict", {"texts": texts[start : start + 64]})
            status, body, _ = invoke(ev)
            assert status == 200
            correct += sum(p["label"] == label for p in body["predictions"])
            total += len(body["predictions"])
    assert total == 400
    assert correct / total >= 0.62, f"{correct}/{total} held-out reviews right"


def test_predictions_match_the_manifests_golden_examples(invoke: Invoke, store_dir: Path) -> None:
    manifest = artifact.read_manifest(next((store_dir / "reviews" / "versions").iterdir()))
    labels, golden = manifest.labels, manifest.golden.examples
    assert golden, "the training job records golden examples"
    for start in range(0, len(golden), 64):
        chunk = golden[start : start + 64]
        ev = request("POST", "/models/reviews/predict", {"texts": [g.text for g in chunk]})
        status, body, _ = invoke(ev)
        assert status == 200
        for example, prediction in zip(chunk, body["predictions"], strict=True):
            for label, expected in zip(labels, example.probabilities, strict=True):
                assert prediction["scores"][label] == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize("name", ["reviews@production", "reviews:1", "reviews%40production"])
def test_a_path_can_name_an_alias_or_a_version(invoke: Invoke, name: str) -> None:
    status, body, _ = invoke(request("POST", f"/models/{name}/predict", {"text": "很好"}))
    assert status == 200 and body["model"] == {"name": "reviews", "version": "1"}


def test_base64_encoded_body_is_decoded(invoke: Invoke) -> None:
    ev = event("predict-one")
    ev["body"] = base64.b64encode(ev["body"].encode()).decode()
    ev["isBase64Encoded"] = True
    status, body, _ = invoke(ev)
    assert status == 200 and body["predictions"][0]["label"] == "positive"


def test_get_model_event_describes_the_version(invoke: Invoke) -> None:
    status, body, _ = invoke(event("get-model"))
    assert status == 200
    assert body["name"] == "reviews" and body["version"] == "1"
    assert body["labels"] == ["negative", "positive"]
    # the interpreter of this environment: tflite-runtime 2.14 on 3.11, LiteRT on 3.13
    expected = "tflite-runtime 2.14" if sys.version_info < (3, 12) else "ai-edge-litert 2."
    assert body["runtime"].startswith(expected)
    assert body["metrics"], "the manifest's metrics are shown"


def test_health_event_reports_the_loaded_model(invoke: Invoke) -> None:
    status, body, _ = invoke(event("health"))
    assert (status, body) == (
        200,
        {"status": "ok", "model": "reviews", "loaded": True, "version": "1"},
    )


def test_openapi_document_is_derived_from_the_schemas(invoke: Invoke) -> None:
    status, doc, _ = invoke(request("GET", "/openapi.json"))
    assert status == 200
    predict = doc["paths"]["/models/{name}/predict"]["post"]
    assert predict["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/PredictRequest"
    )
    assert {"200", "400", "404", "415", "422", "503"} <= set(predict["responses"])
    schemas = doc["components"]["schemas"]
    assert {"PredictRequest", "PredictResponse", "ErrorResponse", "ModelInfo"} <= set(schemas)
    assert schemas["PredictRequest"]["properties"]["texts"]["maxItems"] == 64


# --------------------------------------------------------------------------- client errors
@pytest.mark.parametrize(
    ("name", "status", "code", "field"),
    [
        ("bad-malformed-json", 400, "invalid_json", None),
        ("bad-empty-text", 422, "empty_text", "text"),
        ("bad-too-many-texts", 422, "too_many_texts", "texts"),
        ("bad-text-too-long", 422, "text_too_long", "text"),
        ("bad-wrong-type", 422, "wrong_type", "texts"),
        ("bad-unknown-model", 404, "model_not_found", None),
    ],
)
def test_bad_input_events(
    invoke: Invoke, name: str, status: int, code: str, field: str | None
) -> None:
    error = assert_error(invoke(event(name)), status, code)
    assert error.get("details", {}).get("field") == field


def test_limits_are_named_in_the_error(invoke: Invoke) -> None:
    error = assert_error(invoke(event("bad-too-many-texts")), 422, "too_many_texts")
    assert error["details"] == {"field": "texts", "count": 65, "limit": 64}
    error = assert_error(invoke(event("bad-text-too-long")), 422, "text_too_long")
    assert error["details"] == {"field": "text", "length": 10002, "limit": 10000}


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({}, 422, "missing_text", None),
        ({"text": None}, 422, "missing_text", None),
        ({"texts": []}, 422, "missing_text", "texts"),
        ({"text": "好", "texts": ["好"]}, 422, "both_text_and_texts", None),
        ({"text": "好", "lang": "zh"}, 422, "unknown_field", "lang"),
        ({"text": 5}, 422, "wrong_type", "text"),
        ({"texts": ["好", 5]}, 422, "wrong_type", "texts[1]"),
        ({"texts": ["好", "\n\t "]}, 422, "empty_text", "texts[1]"),
        ({"text": ""}, 422, "empty_text", "text"),
        ([{"text": "好"}], 422, "wrong_type", None),
        ([{"text": "好"}, {"text": "差"}], 422, "wrong_type", None),
        ("null", 422, "missing_body", None),
        ("", 422, "missing_body", None),
        ('"好"', 422, "wrong_type", None),
        ("{'text': '好'}", 400, "invalid_json", None),
    ],
)
def test_every_client_mistake_has_its_code(
    invoke: Invoke, body: Any, status: int, code: str, field: str | None
) -> None:
    error = assert_error(invoke(request("POST", "/models/reviews/predict", body)), status, code)
    assert error.get("details", {}).get("field") == field


def test_several_problems_are_all_listed(invoke: Invoke) -> None:
    body = {"texts": ["", "好" * 10_001]}
    error = assert_error(
        invoke(request("POST", "/models/reviews/predict", body)), 422, "empty_text"
    )
    assert [e["code"] for e in error["details"]["errors"]] == ["empty_text", "text_too_long"]


def test_no_body_at_all(invoke: Invoke) -> None:
    assert_error(invoke(request("POST", "/models/reviews/predict")), 422, "missing_body")


def test_limits_come_from_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("MAAS_MAX_TEXTS", "2")
    env.setenv("MAAS_MAX_TEXT_CHARS", "5")
    invoke = invoker(load_function("http"))
    ev = request("POST", "/models/reviews/predict", {"texts": ["好", "好", "好"]})
    assert assert_error(invoke(ev), 422, "too_many_texts")["details"]["limit"] == 2
    ev = request("POST", "/models/reviews/predict", {"text": "好好好好好好"})
    assert assert_error(invoke(ev), 422, "text_too_long")["details"]["limit"] == 5


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/models/no-such-model/predict", 404, "model_not_found"),
        ("/models/reviews:9/predict", 404, "model_not_found"),
        ("/models/reviews@staging/predict", 404, "model_not_found"),
        ("/models/bad!name/predict", 400, "invalid_model_reference"),
        ("/models/reviews:v1/predict", 400, "invalid_model_reference"),
    ],
)
def test_model_references(invoke: Invoke, path: str, status: int, code: str) -> None:
    assert_error(invoke(request("POST", path, {"text": "很好"})), status, code)


def test_get_unknown_model(invoke: Invoke) -> None:
    assert_error(invoke(request("GET", "/models/no-such-model")), 404, "model_not_found")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", "很好"),
        ("application/x-www-form-urlencoded", "texts=a&texts=b"),
        ("application/x-www-form-urlencoded", "text=a"),
        ("application/xml", "<text>很好</text>"),
    ],
)
def test_only_json_is_accepted(invoke: Invoke, content_type: str, body: str) -> None:
    ev = request("POST", "/models/reviews/predict", body, {"content-type": content_type})
    assert_error(invoke(ev), 415, "unsupported_media_type")


def test_json_with_charset_is_json(invoke: Invoke) -> None:
    headers = {"content-type": "application/json; charset=utf-8"}
    status, _, _ = invoke(request("POST", "/models/reviews/predict", {"text": "好"}, headers))
    assert status == 200


def test_a_body_that_is_not_utf8(invoke: Invoke) -> None:
    ev = request("POST", "/models/reviews/predict", base64.b64encode(b"\xff\xfe{").decode())
    ev["isBase64Encoded"] = True
    assert_error(invoke(ev), 400, "invalid_json")


def test_unknown_route_and_wrong_method(invoke: Invoke) -> None:
    assert_error(invoke(request("GET", "/predict")), 404, "route_not_found")
    assert_error(invoke(request("POST", "/nowhere")), 404, "route_not_found")
    _, _, headers = result = invoke(request("POST", "/models"))
    assert_error(result, 405, "method_not_allowed")
    assert headers["Allow"] == "GET"
    _, _, headers = result = invoke(request("GET", "/models/reviews/predict"))
    assert_error(result, 405, "method_not_allowed")
    assert headers["Allow"] == "POST"
    _, _, headers = result = invoke(request("DELETE", "/models/reviews"))
    assert_error(result, 405, "method_not_allowed")
    assert headers["Allow"] == "GET"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
request_like = st.fixed_dictionaries(
    {}, optional={"text": json_values, "texts": json_values | st.lists(json_values, max_size=4)}
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=json_values | request_like | st.binary(max_size=64))
def test_no_body_gets_a_server_error(invoke: Invoke, body: Any) -> None:
    if isinstance(body, bytes):
        ev = request("POST", "/models/reviews/predict", base64.b64encode(body).decode())
        ev["isBase64Encoded"] = True
    else:
        ev = request("POST", "/models/reviews/predict", body)
    status, payload, _ = invoke(ev)
    if status == 200:
        assert len(payload["predictions"]) >= 1
    else:
        assert status in (400, 422), payload
        assert set(payload) == {"error"} and payload["error"]["code"]


def test_logs_carry_counts_never_texts(
    app: ModuleType,
    invoke: Invoke,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = io.StringIO()
    monkeypatch.setattr(app.function.logger.registered_handler, "stream", log)
    secret = "这是一条非常私密的评论内容，绝对不能出现在日志里"
    invoke(request("POST", "/models/reviews/predict", {"texts": [secret, "很好"]}))
    invoke(request("POST", "/models/reviews/predict", {"texts": [secret, 5]}))
    invoke(request("POST", "/models/reviews/predict", '{"text": "' + secret))
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    assert len(lines) == 3 and secret[:4] not in log.getvalue()
    assert secret[:4] not in caplog.text, "nor in any library's log (tracebacks included)"
    predicted, *rejected = lines
    assert predicted["message"] == "predicted"
    assert (predicted["texts"], predicted["chars"]) == (2, len(secret) + 2)
    assert predicted["model"] == "reviews" and predicted["latency_ms"] > 0
    assert [(r["status"], r["code"]) for r in rejected] == [
        (422, "wrong_type"),
        (400, "invalid_json"),
    ]


# ------------------------------------------------------------------------- the model store
@pytest.fixture
def dead_endpoint(env: pytest.MonkeyPatch) -> str:
    """An S3 endpoint on 127.0.0.1 where nothing listens (yet)."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    env.setenv("AWS_ENDPOINT_URL", endpoint)
    env.setenv("AWS_MAX_ATTEMPTS", "1")  # fail fast: no retries against a closed port
    return endpoint


@pytest.fixture
def late_moto(dead_endpoint: str) -> Iterator[Callable[[], None]]:
    """Starts moto server on the dead endpoint's port when called."""
    from moto.server import ThreadedMotoServer

    servers: list[ThreadedMotoServer] = []

    def start() -> None:
        server = ThreadedMotoServer(
            ip_address="127.0.0.1", port=int(dead_endpoint.rsplit(":", 1)[1])
        )
        server.start()
        servers.append(server)

    yield start
    for server in servers:
        server.stop()


def test_store_unreachable_at_cold_start_is_a_503_then_recovers(
    env: pytest.MonkeyPatch, dead_endpoint: str, late_moto: Callable[[], None], trained_model: Path
) -> None:
    import boto3

    env.setenv("MAAS_STORE", "s3://models-bucket/models")
    app = load_function("http")  # the cold start cannot warm the model: logged, not fatal
    invoke = invoker(app)

    error = assert_error(invoke(event("predict-one")), 503, "store_error")
    assert "127.0.0.1" not in error["message"], "store details stay in the log"
    assert invoke(event("health"))[1]["loaded"] is False
    assert_error(invoke(event("get-model")), 503, "store_error")

    late_moto()
    boto3.client("s3", endpoint_url=dead_endpoint).create_bucket(Bucket="models-bucket")
    open_store("s3://models-bucket/models").publish(trained_model, "reviews", alias="production")

    status, body, _ = invoke(event("predict-one"))  # the same process: nothing was cached
    assert status == 200 and body["predictions"][0]["label"] == "positive"
    assert invoke(event("health"))[1] == {
        "status": "ok",
        "model": "reviews",
        "loaded": True,
        "version": "1",
    }


def test_http_function_on_an_s3_store(
    env: pytest.MonkeyPatch, s3_bucket: str, trained_model: Path
) -> None:
    open_store(f"s3://{s3_bucket}/models").publish(trained_model, "reviews", alias="production")
    env.setenv("MAAS_STORE", f"s3://{s3_bucket}/models")
    invoke = invoker(load_function("http"))
    status, body, _ = invoke(event("predict-many"))
    assert status == 200
    assert [p["label"] for p in body["predictions"]] == [
        "positive",
        "negative",
        "negative",
        "positive",
    ]
    assert_error(invoke(event("bad-unknown-model")), 404, "model_not_found")


# ------------------------------------------------------------------ aliases and the service
@pytest.fixture
def two_versions(trained_model: Path, tmp_path: Path) -> ModelStore:
    store = open_store(tmp_path / "store2")
    store.publish(trained_model, "reviews", alias="production")
    store.publish(trained_model, "reviews")
    return store


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_promote_takes_effect_after_the_alias_ttl(
    two_versions: ModelStore, tmp_path: Path
) -> None:
    clock = Clock()
    service = ModelService(
        two_versions, default_model="reviews", cache_dir=tmp_path / "c", clock=clock
    )
    assert service.classifier().version == "1"
    two_versions.promote("reviews", "2", "production")
    clock.now += 59
    assert service.classifier().version == "1", "within the TTL: no store round trip"
    clock.now += 2
    assert service.classifier().version == "2"
    assert service.classifier("reviews:1").version == "1", "a pinned version is not an alias"


def test_alias_ttl_zero_follows_every_promote(
    env: pytest.MonkeyPatch, two_versions: ModelStore
) -> None:
    env.setenv("MAAS_STORE", two_versions.uri)
    env.setenv("MAAS_ALIAS_TTL_SECONDS", "0")
    invoke = invoker(load_function("http"))
    assert invoke(event("predict-one"))[1]["model"]["version"] == "1"
    two_versions.promote("reviews", "2", "production")
    assert invoke(event("predict-one"))[1]["model"]["version"] == "2"
    assert invoke(event("get-model"))[1]["version"] == "2"


def test_the_configured_alias_or_else_the_latest(
    env: pytest.MonkeyPatch, two_versions: ModelStore
) -> None:
    env.setenv("MAAS_STORE", two_versions.uri)
    env.setenv("MAAS_MODEL_ALIAS", "staging")
    invoke = invoker(load_function("http"))
    assert invoke(event("predict-one"))[1]["model"]["version"] == "2", "no staging alias: latest"

    two_versions.promote("reviews", "1", "staging")
    env.setenv("MAAS_ALIAS_TTL_SECONDS", "0")
    invoke = invoker(load_function("http"))
    assert invoke(event("predict-one"))[1]["model"]["version"] == "1"
    _, body, _ = invoke(request("POST", "/models/reviews@production/predict", {"text": "好"}))
    assert body["model"]["version"] == "1"


def test_a_store_blip_serves_the_last_known_alias(two_versions: ModelStore, tmp_path: Path) -> None:
    clock = Clock()
    service = ModelService(
        two_versions, default_model="reviews", cache_dir=tmp_path / "c", clock=clock
    )
    first = service.classifier()
    clock.now += 120

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        from maas.errors import StoreError

        raise StoreError("cannot reach the store")

    original = two_versions.resolve_route
    two_versions.resolve_route = unreachable
    assert service.classifier() is first
    two_versions.resolve_route = original
    two_versions.promote("reviews", "2", "production")
    clock.now += 6  # the stale answer is retried after a few seconds, not a whole TTL
    assert service.classifier().version == "2"


def test_loaded_classifiers_are_bounded(two_versions: ModelStore, tmp_path: Path) -> None:
    loads: list[str] = []
    service = ModelService(
        two_versions,
        cache_dir=tmp_path / "c",
        max_models=1,
        on_load=lambda c, s: loads.append(c.version),
    )
    one = service.classifier("reviews:1")
    assert service.classifier("reviews:1") is one
    service.classifier("reviews:2")
    service.classifier("reviews:1")
    assert loads == ["1", "2", "1"]


# ------------------------------------------------------------------------------ no TensorFlow
def test_the_functions_never_import_tensorflow(store_dir: Path, tmp_path: Path) -> None:
    """Both entry points imported the way Lambda does, the default model loaded and used, with
    the training environment's packages at the end of the path: TensorFlow is importable, so
    the test fails if anything the functions import pulls it in. (tests/sam/test_build.py does
    the same with only the built layer.)"""
    train_site = next((REPO / ".venv-train" / "lib").glob("python3*/site-packages"))
    probe = f"""
import importlib.util, sys
sys.path.append(r"{train_site}")
assert importlib.util.find_spec("tensorflow") is not None, "TensorFlow is importable"
for name in ("http", "queue"):
    path = r"{REPO}/functions/" + name + "/app.py"
    spec = importlib.util.spec_from_file_location("fn_" + name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.function.service.loaded() is not None, "the cold start loaded the model"
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
assert not heavy, heavy
print("ok", "tflite_runtime" in sys.modules)
"""
    result = subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": "/usr/bin:/bin",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "AWS_DEFAULT_REGION": "us-east-1",
            "MAAS_STORE": str(store_dir),
            "MAAS_MODEL_NAME": "reviews",
            "MAAS_CACHE_DIR": str(tmp_path / "cache"),
            "MAAS_RESULTS": str(tmp_path / "results"),
            "MAAS_SIGNING_KEY": os.environ["MAAS_SIGNING_KEY"],
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "ok True", "the interpreter is tflite-runtime"


# ------------------------------------------------------------------------- privacy, debug on
def test_no_text_reaches_any_log_with_powertools_debug_on(
    env: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """POWERTOOLS_DEBUG=true turns on Powertools' own debug logging, POWERTOOLS_DEV=true its
    resolver's debug mode (which prints whole events): texts must still reach no log line,
    stdout or stderr, on success, on a client error and on a validation failure."""
    import logging

    env.setenv("POWERTOOLS_DEBUG", "true")
    env.setenv("POWERTOOLS_DEV", "true")
    env.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    caplog.set_level(logging.DEBUG)
    secret = "SECRETabcdef很好"
    app = load_function("http")
    for body in ({"text": secret}, {"texts": [secret, ""]}, {"text": secret, "oops": 1}):
        app.handler(request("POST", "/models/reviews/predict", body), lambda_context())
    out, err = capfd.readouterr()
    assert "DEBUG" in out + err + caplog.text, "debug logging is on"
    marker = secret[:12]  # ASCII: found even where JSON escapes the rest
    assert marker not in out and marker not in err and marker not in caplog.text


@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary=x"])
@pytest.mark.parametrize("body", [None, ""])
def test_a_form_content_type_without_a_body_is_refused_unparsed(
    invoke: Invoke, content_type: str, body: str | None
) -> None:
    """Found by `make fuzz`: Powertools parses the (missing) multipart body of a POST."""
    ev = request("POST", "/models/reviews/predict", headers={"content-type": content_type})
    if body is not None:
        ev["body"] = body
    assert_error(invoke(ev), 415, "unsupported_media_type")


def test_models_lists_versions_aliases_and_what_a_bare_name_means(
    env: pytest.MonkeyPatch, two_versions: ModelStore
) -> None:
    env.setenv("MAAS_STORE", two_versions.uri)
    status, body, _ = invoker(load_function("http"))(request("GET", "/models"))
    assert status == 200
    assert body == {
        "models": [
            {
                "name": "reviews",
                "versions": ["1", "2"],
                "aliases": {"production": "1"},
                "default": "1",
            }
        ]
    }


def test_the_playground_and_swagger_ui_are_served_only_when_asked(
    env: pytest.MonkeyPatch,
) -> None:
    off = load_function("http")
    for path in ("/", "/docs"):
        response = off.handler(request("GET", path), lambda_context())
        assert response["statusCode"] == 404
    env.setenv("MAAS_UI", "true")
    on = load_function("http")
    page = on.handler(request("GET", "/"), lambda_context())
    assert page["statusCode"] == 200 and page["headers"]["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in page["headers"]["Content-Security-Policy"]
    html = page["body"]
    assert "<title>maas playground</title>" in html
    assert "http://" not in html and "https://" not in html, "nothing loaded from elsewhere"
    docs = on.handler(request("GET", "/docs"), lambda_context())
    assert docs["statusCode"] == 200 and "SwaggerUIBundle" in docs["body"]
    assert "https://" not in docs["body"].split("<script")[0], "Swagger UI's own assets inline"
