"""The measured processes of bench/harness.py. Each run of this file is one new process.

    python bench/child.py MODE RESULT_JSON [options]

It runs in three interpreters: the Lambda-like one (the `sam build` bundle on PYTHONPATH, no
bytecode writes, as on a read-only /opt), `.venv-train` (TensorFlow) and `.venv`. So the
top of the file imports nothing but `sys` and `time`: the clock starts before any import.

Timestamps are `time.perf_counter()`, which on Linux is CLOCK_MONOTONIC, one clock for every
process of the machine: the parent reads it just before it starts this process, so
`started - spawned` is the interpreter's own start-up. The production code is not changed for
the measurement: the cold-start breakdown comes from wrapping a few methods of the maas
package in this process (client creation, store reads, tokenizer load, interpreter open).
"""

import sys
import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

HERE = Path(__file__).resolve().parent


def peak_rss_mib() -> float:
    """This process's peak resident set size. Not ru_maxrss: Linux carries it over an exec
    from the process that forked (here the harness, already bigger than some children);
    VmHWM belongs to the new address space, which starts at the exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _lambda_runtime() -> Any:
    """maas.local.lambda_runtime from the source tree: it is not in the layer (Lambda brings
    its own runtime), and it imports only the standard library and maas.errors, which the
    layer has. Loaded by path, so nothing else outside the bundle is imported."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "shared/maas/local/lambda_runtime.py"
    spec = importlib.util.spec_from_file_location("bench_lambda_runtime", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lambda_context() -> Any:
    return _lambda_runtime().lambda_context("bench", timeout_ms=3_600_000)  # one for many


def import_handler(function_dir: str) -> Any:
    """Import the function's app.py afresh, as a new Lambda process does."""
    return _lambda_runtime().load_function(Path(function_dir) / "app.py")


def percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "mean_ms": sum(ordered) / len(ordered) * 1000,
        "n": len(ordered),
    }


# ------------------------------------------------------------------------- cold: handler
class Probes:
    """Wall time spent inside a few maas methods (first calls only matter here)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._depth: dict[str, int] = {}

    def wrap(self, owner: Any, attribute: str, name: str) -> None:
        original = owner.__dict__[attribute]
        rewrap: Callable[[Any], Any]
        if isinstance(original, property):
            function, rewrap = original.fget, property
        elif isinstance(original, classmethod):
            function, rewrap = original.__func__, classmethod
        else:
            function, rewrap = original, lambda f: f
        assert callable(function)
        probes = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            if probes._depth.get(name):  # recursion/re-entry: count the outer call only
                return function(*args, **kwargs)
            probes._depth[name] = 1
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                probes.seconds[name] = probes.seconds.get(name, 0.0) + (
                    time.perf_counter() - started
                )
                probes._depth[name] = 0

        setattr(owner, attribute, rewrap(timed))


def install_probes() -> Probes:
    from maas.core.classifier import Classifier
    from maas.core.tokenizer import Tokenizer
    from maas.service.models import ModelService
    from maas.store.backends import S3Backend
    from maas.store.registry import ModelStore

    probes = Probes()
    probes.wrap(ModelService, "classifier", "model_load")
    probes.wrap(S3Backend, "client", "client")
    probes.wrap(ModelStore, "resolve", "resolve")
    probes.wrap(ModelStore, "fetch", "fetch")
    probes.wrap(Classifier, "__init__", "classifier_open")
    probes.wrap(Tokenizer, "load", "tokenizer_load")
    return probes


def cold_handler(args: argparse.Namespace) -> dict[str, Any]:
    probes = install_probes()
    probed = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # the function's logs and metrics
        app = import_handler(args.function_dir)
        imported = time.perf_counter()
        event = json.loads(Path(args.event).read_text(encoding="utf-8"))
        response = app.handler(event, lambda_context())
    answered = time.perf_counter()
    body = json.loads(response["body"])
    if response["statusCode"] != 200 or "predictions" not in body:
        raise SystemExit(f"unexpected first answer: {response}")
    s = probes.seconds
    load = s.get("model_load", 0.0)
    client = s.get("client", 0.0)
    opened = s.get("classifier_open", 0.0)
    return {
        "started": STARTED,
        "answered": answered,
        "probes_s": probed - STARTED,
        "imports_s": (imported - STARTED) - load,
        "client_s": client,
        # alias + manifest reads, downloads and sha256 checks (client creation excluded)
        "store_s": s.get("resolve", 0.0) + s.get("fetch", 0.0) - client,
        "tokenizer_s": s.get("tokenizer_load", 0.0),
        "interpreter_s": opened - s.get("tokenizer_load", 0.0),
        "model_load_s": load,
        "first_answer_s": answered - imported,
        "label": body["predictions"][0]["label"],
        "peak_rss_mib": peak_rss_mib(),
    }


# ---------------------------------------------------------------------------- cold: bare
def cold_bare(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    from tflite_runtime.interpreter import Interpreter

    imported = time.perf_counter()
    interpreter = Interpreter(model_path=args.model, num_threads=1)
    interpreter.allocate_tensors()
    (given,) = interpreter.get_input_details()
    (output,) = interpreter.get_output_details()
    opened = time.perf_counter()
    interpreter.set_tensor(given["index"], np.zeros(given["shape"], dtype=given["dtype"]))
    interpreter.invoke()
    interpreter.get_tensor(output["index"])
    answered = time.perf_counter()
    return {
        "started": STARTED,
        "answered": answered,
        "imports_s": imported - STARTED,
        "interpreter_s": opened - imported,
        "first_answer_s": answered - opened,
        "peak_rss_mib": peak_rss_mib(),
    }


# --------------------------------------------------------------------------- cold: Keras
def cold_keras(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from maas.core.tokenizer import Tokenizer
    from maas.training import models  # noqa: F401  (registers the custom layer)

    imported = time.perf_counter()
    tokenizer = Tokenizer.load(args.tokenizer)
    model = keras.models.load_model(args.keras, compile=False)
    loaded = time.perf_counter()
    x = tokenizer.encode([args.text])
    model.predict(x, verbose=0)
    answered = time.perf_counter()
    return {
        "started": STARTED,
        "answered": answered,
        "imports_s": imported - STARTED,
        "keras_load_s": loaded - imported,
        "first_answer_s": answered - loaded,
        "peak_rss_mib": peak_rss_mib(),
    }


# -------------------------------------------------------------------------- warm latency
def http_events(template_path: str, texts: list[str]) -> list[dict[str, Any]]:
    template = json.loads(Path(template_path).read_text(encoding="utf-8"))
    events = []
    for text in texts:
        event = json.loads(json.dumps(template))
        event["body"] = json.dumps({"text": text}, ensure_ascii=False)
        events.append(event)
    return events


def timed_calls(call: Callable[[Any], Any], items: list[Any], count: int) -> list[float]:
    seconds = []
    clock = time.perf_counter
    for i in range(count):
        item = items[i % len(items)]
        started = clock()
        call(item)
        seconds.append(clock() - started)
    return seconds


class BareFloor:
    """The floor: the maas tokenizer and one tflite-runtime interpreter on the artifact's
    model file, batch-1 invokes, nothing else (what bench/throughput.py calls the floor)."""

    def __init__(self, model_dir: Path) -> None:
        from tflite_runtime.interpreter import Interpreter

        from maas.core.tokenizer import Tokenizer

        self.tokenizer = Tokenizer.load(model_dir / "tokenizer.json")
        self.interpreter = Interpreter(model_path=str(model_dir / "model.tflite"), num_threads=1)
        self.interpreter.allocate_tensors()
        (given,) = self.interpreter.get_input_details()
        (output,) = self.interpreter.get_output_details()
        self.input, self.output = given["index"], output["index"]
        self.length = int(given["shape"][1])

    def encode(self, text: str) -> Any:
        return self.tokenizer.encode([text], self.length)

    def invoke(self, ids: Any) -> Any:
        self.interpreter.set_tensor(self.input, ids)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output)

    def __call__(self, text: str) -> Any:
        return self.invoke(self.encode(text))


def warm_handler(args: argparse.Namespace) -> dict[str, Any]:
    texts = json.loads(Path(args.texts).read_text(encoding="utf-8"))
    with contextlib.redirect_stdout(sys.stderr):
        app = import_handler(args.function_dir)
    context = lambda_context()
    result: dict[str, Any] = {"rounds": {}}
    sets = {name: http_events(args.event, items) for name, items in texts.items()}

    def handle(event: dict[str, Any]) -> None:
        response = app.handler(event, context)
        if response["statusCode"] != 200:
            raise SystemExit(f"unexpected answer: {response}")

    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        for events in sets.values():
            timed_calls(handle, events, min(len(events), 200))  # warm-up
        result["handler_peak_rss_mib"] = peak_rss_mib()
        floor = BareFloor(Path(args.model_dir))
        classifier = app.function.service.classifier()
        encoded = {name: [floor.encode(t) for t in items] for name, items in texts.items()}
        # (maas before sequence-length buckets reads every text at the full length)
        read_length = getattr(classifier, "read_length", lambda _: floor.length)
        result["read_lengths"] = {
            name: sorted(read_length(t) for t in items) for name, items in texts.items()
        }
        result["tokens"] = {
            name: sorted(len(classifier.tokenizer.to_ids(t)) for t in items)
            for name, items in texts.items()
        }
        for _ in range(args.rounds):  # interleaved: the machine's noise hits every series
            for name, events in sets.items():
                for series, call, items in (
                    ("handler", handle, events),
                    ("classifier", lambda text: classifier.predict([text]), texts[name]),
                    ("bare", floor, texts[name]),
                    ("invoke", floor.invoke, encoded[name]),
                ):
                    seconds = timed_calls(call, items, args.requests)
                    result["rounds"].setdefault(f"{series}/{name}", []).append(percentiles(seconds))
    result["peak_rss_mib"] = peak_rss_mib()
    return result


def warm_keras(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from maas.core.tokenizer import Tokenizer
    from maas.training import models  # noqa: F401

    texts = json.loads(Path(args.texts).read_text(encoding="utf-8"))
    tokenizer = Tokenizer.load(args.tokenizer)
    model = keras.models.load_model(args.keras, compile=False)
    length = tokenizer.spec.max_length

    def call(text: str) -> None:
        model(tokenizer.encode([text], length), training=False).numpy()

    def predict(text: str) -> None:
        model.predict(tokenizer.encode([text], length), verbose=0)

    result: dict[str, Any] = {"rounds": {}}
    for items in texts.values():  # warm-up (tracing, first predict)
        timed_calls(call, items, 20)
        timed_calls(predict, items, 5)
    for _ in range(args.rounds):
        for name, items in texts.items():
            for series, function, count in (
                ("keras_call", call, args.requests),
                ("keras_predict", predict, max(10, args.requests // 10)),
            ):
                seconds = timed_calls(function, items, count)
                result["rounds"].setdefault(f"{series}/{name}", []).append(percentiles(seconds))
    result["peak_rss_mib"] = peak_rss_mib()
    return result


# ---------------------------------------------------------------------------- throughput
TEXTS_PER_MESSAGE = 1000  # the template's QueueMaxTextsPerMessage
BATCH_SIZE = 25  # the template's BatchSize


def sqs_events(texts: list[str], tag: str) -> list[dict[str, Any]]:
    """The texts as SQS events the way the event source mapping delivers them."""
    records = []
    for number, start in enumerate(range(0, len(texts), TEXTS_PER_MESSAGE)):
        body = {"id": f"{tag}-{number:05d}", "batch": tag}
        body["texts"] = texts[start : start + TEXTS_PER_MESSAGE]  # type: ignore[assignment]
        records.append(
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": f"{tag}-{number}",
                "body": json.dumps(body, ensure_ascii=False),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:bench",
                "awsRegion": "us-east-1",
            }
        )
    return [{"Records": records[i : i + BATCH_SIZE]} for i in range(0, len(records), BATCH_SIZE)]


@contextlib.contextmanager
def cpu_and_wall(into: dict[str, float]) -> Iterator[None]:
    cpu, wall = time.process_time(), time.perf_counter()
    yield
    into["cpu_s"] = time.process_time() - cpu
    into["wall_s"] = time.perf_counter() - wall


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    from throughput import bare_interpreter  # the floor of the queue benchmark, reused

    texts = json.loads(Path(args.texts).read_text(encoding="utf-8"))["all"]
    with contextlib.redirect_stdout(sys.stderr):
        app = import_handler(args.function_dir)
    context = lambda_context()

    def run_handler(tag: str) -> None:
        for event in sqs_events(texts, tag):
            response = app.handler(event, context)
            if response.get("batchItemFailures"):
                raise SystemExit(f"failed messages: {response}")

    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        run_handler("warmup")
    handler_peak = peak_rss_mib()  # before this process opens anything else
    floor = bare_interpreter(Path(args.model_dir), texts)
    classifier = app.function.service.classifier()
    rounds: dict[str, list[dict[str, float]]] = {"queue_handler": [], "classifier": [], "bare": []}

    def classify() -> None:  # the library alone, in messages of the same size
        for start in range(0, len(texts), TEXTS_PER_MESSAGE):
            classifier.predict(texts[start : start + TEXTS_PER_MESSAGE])

    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        for number in range(args.rounds):
            phase: dict[str, float] = {"texts": len(texts)}
            with cpu_and_wall(phase):
                run_handler(f"round{number}-{uuid.uuid4().hex[:8]}")
            rounds["queue_handler"].append(phase)
            for name, run in (("classifier", classify), ("bare", floor)):
                phase = {"texts": len(texts)}
                with cpu_and_wall(phase):
                    run()
                rounds[name].append(phase)
    return {"rounds": rounds, "handler_peak_rss_mib": handler_peak, "peak_rss_mib": peak_rss_mib()}


MODES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "cold-handler": cold_handler,
    "cold-bare": cold_bare,
    "cold-keras": cold_keras,
    "warm-handler": warm_handler,
    "warm-keras": warm_keras,
    "throughput": throughput,
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=sorted(MODES))
    parser.add_argument("result", type=Path)
    parser.add_argument("--function-dir")
    parser.add_argument("--event")
    parser.add_argument("--model")
    parser.add_argument("--model-dir")
    parser.add_argument("--keras")
    parser.add_argument("--tokenizer")
    parser.add_argument("--text")
    parser.add_argument("--texts")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    result = MODES[args.mode](args)
    args.result.write_text(json.dumps(result), encoding="utf-8")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # the measurement is over; interpreter teardown is not part of it


if __name__ == "__main__":
    sys.exit(main())
