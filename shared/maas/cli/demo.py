"""`maas demo`: the main job end to end on the embedded defaults.

Train the default preset on the bundled real reviews, publish the artifact to a local model
store, then replay the committed API Gateway and SQS events (the ones `sam local` uses)
through the real Lambda handlers and print what comes back.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

from maas.cli.common import command, note
from maas.training.options import PRESET_NAMES

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
BATCH_TEXTS = 40
# moto answers any credentials; these keep a real AWS profile out of the demo's local queue.
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ENDPOINT_URL": "",
}


def heading(step: str) -> None:
    print(f"\n== {step}", flush=True)


def invoke(handler: Any, event: dict[str, Any], function_name: str) -> tuple[Any, float]:
    """Call a handler as Lambda would; Powertools' log and metric lines (stdout in Lambda,
    where CloudWatch collects them) are kept out of the demo's output."""
    from maas.local.lambda_runtime import lambda_context

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        # metrics are off in the demo; Powertools still warns that none were published
        warnings.filterwarnings("ignore", "No application metrics to publish")
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


def add_parser(commands: Any, root: argparse.ArgumentParser) -> None:
    demo = command(
        commands,
        "demo",
        "train, publish and serve the demo model end to end",
        "Train the bundled reviews, publish to a local store (reusing the version when the "
        "model is unchanged), answer API Gateway events through the HTTP function, and run a "
        "batch through a local SQS queue with `maas batch submit`, `work` and `results`.",
    )
    demo.add_argument(
        "--data",
        metavar="FILE",
        type=Path,
        help="labelled data (default: the bundled Chinese reviews)",
    )
    demo.add_argument(
        "--workdir", metavar="DIR", type=Path, default=Path(".maas"), help="where it all goes"
    )
    demo.add_argument("--preset", choices=PRESET_NAMES, default="default", help="architecture")
    demo.set_defaults(func=run, root=root)


def run(args: argparse.Namespace) -> int:
    from maas.cli.common import open_store
    from maas.client.training import run_job
    from maas.local.lambda_runtime import REPO, load_event, load_function
    from maas.store.publishing import publish, verify_artifact
    from maas.training.options import TrainingOptions

    work: Path = args.workdir.resolve()
    data = (args.data or REPO / "data" / "reviews-zh" / "reviews.csv").resolve()
    artifact_dir, store = work / "demo" / "artifact", work / "store"
    # The functions read their configuration from the environment at cold start, as on Lambda.
    os.environ.update(
        MAAS_STORE=str(store),
        MAAS_MODEL_NAME=MODEL_NAME,
        MAAS_MODEL_ALIAS="production",
        MAAS_CACHE_DIR=str(work / "cache"),
        MAAS_HOME=str(work),
        MAAS_RESULTS=str(work / "results"),
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_LOG_LEVEL=os.environ.get("POWERTOOLS_LOG_LEVEL", "ERROR"),
        POWERTOOLS_METRICS_NAMESPACE="maas",
        POWERTOOLS_SERVICE_NAME="maas-demo",
    )

    for old in ("results", "batches"):  # this run's results only, reruns included
        shutil.rmtree(work / old, ignore_errors=True)
    shown = data.relative_to(REPO) if data.is_relative_to(REPO) else data
    heading(f"1/5 Train the {args.preset} preset on {shown}")
    status = run_job(TrainingOptions(data, artifact_dir, preset=args.preset))
    if status != 0:
        return status
    verified = verify_artifact(artifact_dir)
    note(f"verified with {verified.runtime}: golden examples within {verified.max_abs_diff:.1e}")
    print(f"artifact: {artifact_dir}  (model card: {artifact_dir / 'model-card.md'})")

    heading(f"2/5 Publish to the local model store {store}")
    model_store = open_store(str(store), publishing=True)
    published = publish(artifact_dir, model_store, MODEL_NAME, alias="production", reuse=True)
    print(published.version)
    if published.reused:
        note(
            f"{MODEL_NAME}:{published.version} in {model_store.uri} already serves this model "
            "(same labels, same files): reused, nothing published; @production points at it"
        )
    else:
        note(f"published {MODEL_NAME}:{published.version} to {model_store.uri} as @production")

    heading("3/5 Online predictions: API Gateway (HTTP API) events through functions/http/app.py")
    http = load_function("http")
    for name in HTTP_EVENTS:
        event = load_event("http", name)
        response, millis = invoke(http.handler, event, "maas-predict")
        show_http(event, response, millis)

    heading("4/5 Queue events: an SQS batch with a poison message through functions/queue/app.py")
    queue = load_function("queue")
    event = load_event("sqs", SQS_EVENT)
    response, _ = invoke(queue.handler, event, "maas-batch")
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    for record in event["Records"]:
        outcome = "FAILED (left for retry, then the DLQ)" if record["messageId"] in failed else "ok"
        print(f"message {record['messageId']}: {outcome}")
    for path in sorted((work / "results" / "results").glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        labels = ", ".join(p["label"] for p in doc["predictions"])
        print(f"  result  {path.name}: {labels}")
    for path in sorted((work / "results" / "failures").glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        print(f"  failure {path.name}: {doc['code']}: {doc['message']}")
    heading(
        "5/5 A file through a local SQS queue (moto on 127.0.0.1): maas batch submit, work, ..."
    )
    batch_demo(args.root, work, data)
    note(
        f"\nDone. Results in {work / 'results'}. Next: .venv/bin/maas serve --store {store} "
        f"and open http://127.0.0.1:8080/ ; or .venv/bin/maas predict --store {store} "
        f"--model {MODEL_NAME} '质量很好，推荐'"
    )
    return 0


def batch_demo(
    cli: argparse.ArgumentParser, work: Path, data: Path, texts: int = BATCH_TEXTS
) -> None:
    """The last `texts` rows of the data, plus a blank text, through a real SQS API (moto in
    server mode, on a free loopback port), consumed by the real queue function."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        note("skipped: moto is not installed (pip install 'moto[server]')")
        return
    from maas.client.data import read_texts
    from maas.client.sqs import sqs_client
    from maas.local.event_source import create_queue

    rows = read_texts(data)[-texts:]
    batch_file = work / "demo" / "batch.jsonl"
    with batch_file.open("w", encoding="utf-8") as out:
        for number, text in enumerate([*rows, " "], 1):
            out.write(json.dumps({"id": f"review-{number}", "text": text}, ensure_ascii=False))
            out.write("\n")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    saved = {name: os.environ.get(name) for name in FAKE_AWS}
    try:
        host, port = server.get_host_and_port()
        os.environ.update(FAKE_AWS, AWS_ENDPOINT_URL=f"http://{host}:{port}")
        queue, dlq = create_queue(sqs_client(), "maas-demo", visibility_timeout=5)
        results = work / "demo" / "batch-results.csv"
        steps = [
            ["batch", "submit", str(batch_file), "--queue", queue, "--model", MODEL_NAME],
            ["batch", "work", "--queue", queue],
            ["batch", "status", "{id}", "--dlq", dlq],
            ["batch", "results", "{id}", "--out", str(results), "--dlq", dlq],
        ]
        batch_id = ""
        for step in steps:
            argv = [arg.format(id=batch_id) for arg in step]
            print(f"\n$ maas {' '.join(_short(arg, work) for arg in argv)}", flush=True)
            stdout = io.StringIO()
            with contextlib.redirect_stdout(stdout):
                command = cli.parse_args(argv)
                status = int(command.func(command))
            print(stdout.getvalue(), end="", flush=True)
            if status != 0:
                raise SystemExit(status)
            batch_id = batch_id or stdout.getvalue().strip()
        with results.open(encoding="utf-8") as handle:
            print("".join(handle.readline() for _ in range(4)), end="")
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _short(arg: str, work: Path) -> str:
    return arg.replace(str(work.parent) + os.sep, "") if arg.startswith(str(work)) else arg
