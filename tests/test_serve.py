"""`maas serve` as a new user meets it: the installed command on a free loopback port, curl and
Python's HTTP client against it, the OpenAPI document through the OpenAPI 3 validator, and the
playground and Swagger UI in a real headless browser (Debian's Chromium, driven by Playwright).

What the server answers must be what the Lambda handler answers for the same request: the
tests send each request over HTTP, then hand the handler the API Gateway event of that
request, and compare status, content type and body.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from conftest import MAAS, REPO, Server, maas_serve, open_store

from maas.local.gateway import to_event
from maas.local.lambda_runtime import lambda_context, load_function

CHROMIUM = Path("/usr/bin/chromium")
# Screenshots of the pages, for a person to look at after a run (gitignored).
ARTIFACTS = REPO / "test-artifacts"

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture(scope="module")
def store(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve") / "store"
    open_store(root).publish(trained_model, "reviews", alias="production")
    return root


@pytest.fixture(scope="module")
def server(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with maas_serve(store, tmp_path_factory.mktemp("serve-cache")) as running:
        yield running


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    server: Server,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    request = urllib.request.Request(
        server.url + path, data=body, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Answer(response.status, response.headers["content-type"], response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers["content-type"], error.read())


def handler_answer(
    server: Server,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Answer:
    """What the Lambda handler (functions/http/app.py) answers to the same request's event."""
    monkeypatch.setenv("MAAS_STORE", str(server.store))
    monkeypatch.setenv("MAAS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MAAS_MODEL_NAME", "reviews")
    monkeypatch.setenv("MAAS_UI", "true")
    path_only, _, query = path.partition("?")
    event = to_event(method, path_only, query, list(headers.items()), body or b"")
    result = load_function("http").handler(event, lambda_context())
    raw = result.get("body") or ""
    return Answer(result["statusCode"], result["headers"]["Content-Type"], raw.encode())


REQUESTS = [
    ("POST", "/models/reviews/predict", {"text": "房间很干净，服务也很好，下次还会再来"}),
    ("POST", "/models/reviews/predict", {"texts": ["太吵了，根本没法睡觉", "物流很快，非常满意"]}),
    ("POST", "/models/reviews@production/predict", {"text": "质量一般"}),
    ("POST", "/models/reviews:1/predict", {"text": "质量一般"}),
    ("POST", "/models/reviews/predict", {"text": "   "}),
    ("POST", "/models/reviews/predict", {"texts": []}),
    ("POST", "/models/reviw/predict", {"text": "好"}),
    ("POST", "/models/reviews/predict", b'{"text": "unterminated'),
    ("GET", "/models/reviews", None),
    ("GET", "/models", None),
    ("GET", "/nowhere", None),
    ("DELETE", "/models/reviews", None),
]


@pytest.mark.parametrize(("method", "path", "body"), REQUESTS, ids=lambda v: str(v)[:40])
def test_the_server_answers_what_the_handler_answers(
    server: Server,
    method: str,
    path: str,
    body: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    raw = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json"} if raw is not None else {}
    served = http(server, method, path, raw, headers)
    direct = handler_answer(server, method, path, raw, headers, monkeypatch, tmp_path)
    assert (served.status, served.content_type) == (direct.status, direct.content_type)
    assert served.json() == direct.json()
    assert served.status < 500


def test_curl_as_the_readme_shows_it(server: Server) -> None:
    """The README's command answers; curl's `-d` alone declares a form, which is refused
    with the fix (the deployed function answers the same)."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.fail("curl is not installed (apt install curl)")
    body = '{"text": "房间很干净，服务也很好"}'
    url = f"{server.url}/models/reviews/predict"
    json_type = ["-H", "content-type: application/json"]
    done = subprocess.run(
        [curl, "-s", "-X", "POST", url, *json_type, "-d", body],
        capture_output=True,
        text=True,
        timeout=30,
    )
    answer = json.loads(done.stdout)
    assert answer["model"] == {"name": "reviews", "version": "1"}
    assert answer["predictions"][0]["label"] in ("positive", "negative")
    form = subprocess.run(
        [curl, "-s", "-w", "\\n%{http_code}", "-X", "POST", url, "-d", body],
        capture_output=True,
        text=True,
        timeout=30,
    )
    refused, status = form.stdout.rsplit("\n", 1)
    assert status == "415"
    error = json.loads(refused)["error"]
    assert error["code"] == "unsupported_media_type"
    assert "-H 'content-type: application/json'" in error["message"]
    explained = subprocess.run(
        [curl, "-s", "-X", "POST", url, *json_type, "-d", body[:-1] + ', "explain": true}'],
        capture_output=True,
        text=True,
        timeout=30,
    )
    tokens = json.loads(explained.stdout)["predictions"][0]["explanation"]["tokens"]
    assert {"token", "start", "end", "contribution"} <= set(tokens[0])


def test_the_openapi_document_is_valid_openapi_3(server: Server) -> None:
    from openapi_spec_validator import validate

    document = http(server, "GET", "/openapi.json").json()
    validate(document)
    assert document["openapi"].startswith("3.")
    assert "/models/{name}/predict" in document["paths"]


def test_serve_refuses_a_port_in_use(server: Server) -> None:
    port = str(urlparse(server.url).port)
    done = subprocess.run(
        [MAAS, "serve", "--store", str(server.store), "--port", port],
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in lines[0] and "--port" in lines[0]


# ---------------------------------------------------------------------------- the browser
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt install chromium (the page tests need it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[tuple[Any, list[str]]]:
    """A page that may talk to loopback only; what it tried elsewhere is recorded (and the
    tests expect nothing)."""
    context = browser.new_context(viewport={"width": 1100, "height": 900}, reduced_motion="reduce")
    elsewhere: list[str] = []

    def route(route: Any) -> None:
        host = urlparse(route.request.url).hostname or ""
        if host == "127.0.0.1" or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", route)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page, elsewhere
    context.close()
    assert errors == [], f"the page threw: {errors}"


def test_the_playground_classifies_a_text(server: Server, page: tuple[Any, list[str]]) -> None:
    tab, elsewhere = page
    tab.goto(server.url + "/")
    tab.wait_for_selector("#model option[value='reviews']", state="attached")
    tab.fill("#texts", "房间很干净，服务也很好，下次还会再来\n太吵了，根本没法睡觉，不推荐")
    tab.click("#classify")
    tab.wait_for_selector("[data-testid=label]")
    labels = tab.locator("[data-testid=label]").all_inner_texts()
    assert labels == ["positive", "negative"]
    assert tab.inner_text("[data-testid=version]") == "reviews:1"
    assert tab.inner_text("[data-testid=latency]").endswith("ms")
    assert "up" in tab.inner_text("#health")
    assert "labels negative, positive" in tab.inner_text("#model-info")
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)
    assert elsewhere == [], "the page loads nothing from the internet"


def test_the_playground_highlights_the_words_that_decided(
    server: Server, page: tuple[Any, list[str]]
) -> None:
    tab, _ = page
    tab.goto(server.url + "/")
    tab.wait_for_selector("#model option[value='reviews']", state="attached")
    tab.wait_for_selector("#explain-box:not([hidden])")  # GET /models/reviews: explain true
    text = "房间很干净，服务也很好 🙂 下次还会再来"  # an emoji: spans count code points
    tab.fill("#texts", text)
    tab.check("#explain")
    tab.click("#classify")
    tab.wait_for_selector("[data-testid=explained]")
    shown = tab.inner_text("[data-testid=explained]")
    assert shown == text  # every character once, none doubled by overlapping bigrams
    coloured = tab.locator("[data-testid=explained] span.tok")
    assert coloured.count() >= 10
    assert tab.locator("[data-testid=explained] span.for").count() >= 1
    styles = coloured.evaluate_all("nodes => nodes.map(n => n.style.background)")
    assert all(style.startswith("rgba(") for style in styles)
    tooltip = coloured.first.get_attribute("title") or ""
    assert tooltip[:1] in text and ("+" in tooltip or "-" in tooltip)
    assert "leave-one-out" in tab.inner_text("[data-testid=explanation-note]")
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / "playground-explain.png"), full_page=True)


def test_the_playground_shows_a_clients_mistake(
    server: Server, page: tuple[Any, list[str]]
) -> None:
    tab, _ = page
    tab.goto(server.url + "/")
    tab.wait_for_selector("#model option[value='reviews']", state="attached")
    tab.fill("#texts", "好" * 10_001)
    tab.click("#classify")
    tab.wait_for_selector("#output.error code")
    assert tab.inner_text("#output code") == "text_too_long"


def test_swagger_ui_lists_the_operations(server: Server, page: tuple[Any, list[str]]) -> None:
    tab, elsewhere = page
    tab.goto(server.url + "/docs")
    tab.wait_for_selector(".swagger-ui .opblock")
    paths = tab.locator(".opblock-summary-path").all_inner_texts()
    assert any("/models/{name}/predict" in p.replace("\u200b", "") for p in paths), paths
    assert any("/v2/models/{name}/infer" in p.replace("\u200b", "") for p in paths), paths
    # "Try it out" on the predict operation sends its example and shows the answer
    operation = tab.locator(".opblock-post").filter(has_text="Classify one text or several")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator(".parameters input[placeholder='name']").fill("reviews")
    operation.locator("textarea.body-param__text").fill('{"text": "房间很干净，服务也很好"}')
    operation.locator("button.execute").click()
    answer = operation.locator(".live-responses-table tbody .response")
    answer.wait_for()
    assert answer.locator(".response-col_status").inner_text().strip() == "200"
    assert '"reviews"' in answer.locator(".microlight").first.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / "swagger-ui.png"), full_page=True)
    assert elsewhere == [], "Swagger UI's assets are served by the function itself"


def test_the_playgrounds_code_snippets_run(server: Server, page: tuple[Any, list[str]]) -> None:
    """What the page tells a person to paste runs and answers what the page showed."""
    tab, _ = page
    tab.goto(server.url + "/")
    tab.wait_for_selector("#model option[value='reviews']", state="attached")
    tab.fill("#texts", "房间很干净，服务也很好\n太吵了，根本没法睡觉")
    tab.click("#classify")
    tab.wait_for_selector("[data-testid=label]")
    shown = tab.locator("[data-testid=label]").all_inner_texts()
    tab.click("#code-box summary")
    python = tab.inner_text("[data-testid=snippet-python]")
    assert "from maas.client import Client" in python
    ran = subprocess.run([sys.executable, "-c", python], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert [label for label, _ in ast.literal_eval(ran.stdout.split(" ", 1)[1])] == shown
    triton = subprocess.run(
        [sys.executable, "-c", tab.inner_text("[data-testid=snippet-v2]")],
        capture_output=True,
        text=True,
    )
    assert triton.returncode == 0, triton.stderr
    assert all(label in triton.stdout for label in shown)
    curl = subprocess.run(
        ["bash", "-c", tab.inner_text("[data-testid=snippet-curl]")], capture_output=True, text=True
    )
    assert [p["label"] for p in json.loads(curl.stdout)["predictions"]] == shown
