"""`maas demo`: the main job end to end on the embedded defaults.

Train the default preset on the bundled real reviews, publish the artifact to a local model
store, then replay the committed API Gateway and SQS events (the ones `sam local` uses)
through the real Lambda handlers and print what comes back.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import sys
import time
import uuid
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

from maas.errors import MaasError

REPO = Path(__file__).resolve().parents[2]
MODEL_NAME = "reviews"
HTTP_EVENTS = (
    "health",
    "predict-one",
    "predict-many",
    "get-model",
    "bad-empty-text",
    "bad-unknown-model",
)
SQS_EVENT = "mixed-batch"


def lambda_context(function_name: str) -> Any:
    """The attributes of a Lambda context object that Powertools reads."""
    return SimpleNamespace(
        function_name=function_name,
        function_version="$LATEST",
        memory_limit_in_mb=1024,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}",
        aws_request_id=str(uuid.uuid4()),
        get_remaining_time_in_millis=lambda: 30_000,
    )


def load_function(name: str) -> ModuleType:
    """Import `functions/<name>/app.py` the way the Lambda runtime does (by file)."""
    path = REPO / "functions" / name / "app.py"
    if not path.is_file():
        raise MaasError(f"{path} not found: `maas demo` runs from a maas source checkout")
    spec = importlib.util.spec_from_file_location(f"maas_function_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_event(kind: str, name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((REPO / "events" / kind / f"{name}.json").read_text("utf-8"))
    return event


def heading(step: str) -> None:
    print(f"\n== {step}", flush=True)


def invoke(handler: Any, event: dict[str, Any], function_name: str) -> tuple[Any, float]:
    """Call a handler as Lambda would; Powertools' log and metric lines (stdout in Lambda,
    where CloudWatch collects them) are kept out of the demo's output."""
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        response = handler(event, lambda_context(function_name))
    return response, (time.perf_counter() - started) * 1000


def show_http(event: dict[str, Any], response: dict[str, Any], millis: float) -> None:
    method = event["requestContext"]["http"]["method"]
    print(f"\n{method} {event['rawPath']}" + (f"  {event['body']}" if event.get("body") else ""))
    body = json.loads(response["body"]) if response.get("body") else None
    if isinstance(body, dict) and isinstance(body.get("metrics"), dict):  # GET /models/{name}
        body["metrics"] = {
            kind: {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"]}
            for kind, report in body["metrics"].items()
        }
    print(f"-> {response['statusCode']} in {millis:.1f} ms")
    print(json.dumps(body, ensure_ascii=False, indent=2))


def run_demo(args: argparse.Namespace) -> int:
    from maas.cli import main as cli

    work: Path = args.workdir.resolve()
    data = (args.data or REPO / "data" / "reviews-zh" / "reviews.csv").resolve()
    artifact_dir, store = work / "demo" / "artifact", work / "store"
    os.environ.update(
        MAAS_STORE=str(store),
        MAAS_MODEL_NAME=MODEL_NAME,
        MAAS_MODEL_ALIAS="production",
        MAAS_CACHE_DIR=str(work / "cache"),
        MAAS_RESULTS=str(work / "results"),
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_LOG_LEVEL=os.environ.get("POWERTOOLS_LOG_LEVEL", "ERROR"),
        POWERTOOLS_METRICS_NAMESPACE="maas",
        POWERTOOLS_SERVICE_NAME="maas-demo",
    )

    shown = data.relative_to(REPO) if data.is_relative_to(REPO) else data
    heading(f"1/4 Train the {args.preset} preset on {shown}")
    if cli(["train", str(data), "--out", str(artifact_dir), "--preset", args.preset]) != 0:
        return 1
    print(f"artifact: {artifact_dir}  (model card: {artifact_dir / 'model-card.md'})")

    heading(f"2/4 Publish to the local model store {store}")
    if (
        cli(
            [
                "publish",
                str(artifact_dir),
                "--store",
                str(store),
                "--name",
                MODEL_NAME,
                "--alias",
                "production",
            ]
        )
        != 0
    ):
        return 1

    heading("3/4 Online predictions: API Gateway (HTTP API) events through functions/http/app.py")
    http = load_function("http")
    for name in HTTP_EVENTS:
        event = load_event("http", name)
        response, millis = invoke(http.handler, event, "maas-predict")
        show_http(event, response, millis)

    heading(
        "4/4 Batch predictions: an SQS batch with a poison message through functions/queue/app.py"
    )
    queue = load_function("queue")
    event = load_event("sqs", SQS_EVENT)
    response, _ = invoke(queue.handler, event, "maas-batch")
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    for record in event["Records"]:
        outcome = "FAILED (left for retry, then the DLQ)" if record["messageId"] in failed else "ok"
        print(f"message {record['messageId']}: {outcome}")
    results = sorted((work / "results" / "results").glob("*.json"))
    for path in results:
        doc = json.loads(path.read_text(encoding="utf-8"))
        labels = ", ".join(p["label"] for p in doc["predictions"])
        print(f"  result {path.name}: {labels}")
    print(
        f"\nDone. Results in {work / 'results'}; try: .venv/bin/maas predict --store {store} "
        f"--model {MODEL_NAME} '质量很好，推荐'",
        file=sys.stderr,
    )
    return 0
