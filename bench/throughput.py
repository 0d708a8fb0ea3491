"""Batch throughput: texts through `maas batch submit` -> SQS -> the queue function -> results,
against the bare interpreter as the floor. A benchmark, not a test.

    .venv/bin/python bench/throughput.py [--texts 100000] [--model-dir DIR] [--out bench-results]
    .venv/bin/python bench/throughput.py --quick --model-dir DIR   # 2,000 texts, one round

`--quick` is what `make test` runs (tests/test_bench.py): the whole path, exact accounting,
no figures worth quoting.

The stack is local and on loopback only: moto server (SQS with a DLQ, S3 for the model store
and the results) in its own process, and the real queue function (functions/queue/app.py) run
in this process by the local event source mapping (`maas.local.event_source`, batch size 25 as
in the template). The texts are the real Chinese reviews in data/reviews-zh/reviews.csv, repeated.

Measured, each on the same texts:
- floor: tflite-runtime Interpreter + the maas tokenizer, one invoke per text, no handler;
- classifier: `Classifier.predict` in messages of 1000 texts (the library, no SQS or S3);
- pipeline: every invocation of the queue function (parse, predict, conditional put of the
  result) plus the poller's receive and delete calls.

"Per core" is texts per CPU-second of the process that does the work: the interpreter is
single-threaded, and so is the queue function (a 1769 MB Lambda is one vCPU). The pipeline's
wall-clock rate is reported too; it includes waiting for moto, which runs on the other core.
Without --model-dir a model is trained first with the training environment.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from maas.core.limits import MAX_TEXTS_PER_MESSAGE

REPO = Path(__file__).resolve().parent.parent
REVIEWS = REPO / "data" / "reviews-zh" / "reviews.csv"
QUEUE_APP = REPO / "functions" / "queue" / "app.py"
TRAIN_PYTHON = REPO / ".venv-train" / "bin" / "python"
T = TypeVar("T")
BATCH_SIZE = 25  # the template's BatchSize
TEXTS_PER_MESSAGE = MAX_TEXTS_PER_MESSAGE  # the template's QueueMaxTextsPerMessage
QUICK_TEXTS = 2000


# ------------------------------------------------------------------------------ measuring
@dataclass
class Phase:
    name: str
    texts: int
    wall: float
    cpu: float  # this process
    moto_cpu: float = 0.0

    @property
    def per_core(self) -> float:
        return self.texts / self.cpu

    @property
    def per_second(self) -> float:
        return self.texts / self.wall

    def to_dict(self) -> dict[str, Any]:
        return {
            "texts": self.texts,
            "wall_s": round(self.wall, 3),
            "cpu_s": round(self.cpu, 3),
            "moto_cpu_s": round(self.moto_cpu, 3),
            "texts_per_cpu_second": round(self.per_core, 1),
            "texts_per_wall_second": round(self.per_second, 1),
        }


def process_cpu(pid: int) -> float:
    """utime + stime of another process, in seconds (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    name: str, texts: int, run: Callable[[], T], moto_pid: int | None = None
) -> tuple[Phase, T]:
    moto_before = process_cpu(moto_pid) if moto_pid else 0.0
    cpu, wall = time.process_time(), time.perf_counter()
    value = run()
    phase = Phase(name, texts, time.perf_counter() - wall, time.process_time() - cpu)
    if moto_pid:
        phase.moto_cpu = process_cpu(moto_pid) - moto_before
    print(f"  {name}: {texts} texts in {phase.wall:.2f} s", file=sys.stderr)
    return phase, value


# ---------------------------------------------------------------------------------- set-up
def train_model(out: Path) -> tuple[Path, str]:
    command = [str(TRAIN_PYTHON), "-m", "maas.training", str(REVIEWS.relative_to(REPO)), "--out"]
    command.append(str(out))
    print(f"training: {' '.join(command)}", file=sys.stderr)
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return out, " ".join(command)


def write_texts(path: Path, count: int) -> list[str]:
    with REVIEWS.open(encoding="utf-8", newline="") as handle:
        pool = [row["text"] for row in csv.DictReader(handle)]
    texts = [pool[i % len(pool)] for i in range(count)]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        writer.writerows((f"t{i:07d}", text) for i, text in enumerate(texts))
    return texts


@contextlib.contextmanager
def moto_server() -> Iterator[tuple[str, int]]:
    """moto server in its own process on 127.0.0.1; yields (endpoint, pid)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", server.pid
    finally:
        server.terminate()
        server.wait(timeout=10)


# ------------------------------------------------------------------------------- the floor
def bare_interpreter(model_dir: Path, texts: list[str]) -> Callable[[], None]:
    """tflite-runtime Interpreter + the maas tokenizer, batch-1 invokes, nothing else."""
    from tflite_runtime.interpreter import Interpreter

    from maas.core import manifest as artifact
    from maas.core.tokenizer import Tokenizer

    tokenizer = Tokenizer.load(model_dir / artifact.TOKENIZER)
    interpreter = Interpreter(model_path=str(model_dir / artifact.MODEL), num_threads=1)
    interpreter.allocate_tensors()
    (given,) = interpreter.get_input_details()
    (output,) = interpreter.get_output_details()
    length = int(given["shape"][1])

    def run() -> None:
        for start in range(0, len(texts), TEXTS_PER_MESSAGE):
            ids = tokenizer.encode(texts[start : start + TEXTS_PER_MESSAGE], length)
            for row in range(len(ids)):
                interpreter.set_tensor(given["index"], ids[row : row + 1])
                interpreter.invoke()
                interpreter.get_tensor(output["index"])

    return run


# ---------------------------------------------------------------------------------- the run
def run(args: argparse.Namespace) -> dict[str, Any]:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    work = out / f"throughput-{stamp}"  # inputs, model, logs, results; the report beside it
    work.mkdir()
    train_command = None
    model_dir = args.model_dir
    if model_dir is None:
        model_dir, train_command = train_model(work / "model")

    data = work / "texts.csv"
    texts = write_texts(data, args.texts)
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_SERVICE_NAME="maas-queue",
        POWERTOOLS_METRICS_NAMESPACE="maas-bench",
        MAAS_HOME=str(work / "home"),
        MAAS_SIGNING_KEY=str(work / "signing.key"),
        MAAS_MODEL_NAME="reviews",
        MAAS_STORE="s3://bench-models/models",
        MAAS_RESULTS="s3://bench-results",
        MAAS_CACHE_DIR=str(work / "cache"),
        MAAS_MAX_TEXTS=str(TEXTS_PER_MESSAGE),
    )
    from maas.client import batch
    from maas.core.classifier import Classifier
    from maas.local.event_source import EventSource, create_queue
    from maas.local.lambda_runtime import load_function
    from maas.store import ModelStore
    from maas.store.signing import open_signer

    print(f"{args.texts} texts; model {model_dir}", file=sys.stderr)
    floor = bare_interpreter(model_dir, texts)
    classifier = Classifier.open(model_dir)

    def classify() -> None:
        for start in range(0, len(texts), TEXTS_PER_MESSAGE):
            classifier.predict(texts[start : start + TEXTS_PER_MESSAGE])

    rounds: dict[str, list[Phase]] = {}
    with moto_server() as (endpoint, moto_pid):
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        import boto3

        boto3.client("s3").create_bucket(Bucket="bench-models")
        boto3.client("s3").create_bucket(Bucket="bench-results")
        signer = open_signer(str(work / "signing.key"), create=True)
        store = ModelStore.open("s3://bench-models/models", signer)
        store.publish(model_dir, "reviews", alias="production")
        sqs = boto3.client("sqs")
        queue, dlq = create_queue(sqs, "bench", visibility_timeout=360, max_receive_count=5)
        logs = io.StringIO()  # the function's JSON logs and EMF metrics (stdout on Lambda)
        with contextlib.redirect_stdout(logs):
            app = load_function(QUEUE_APP)  # the cold start (imports, model from S3): not timed
        source = EventSource(queue, app.handler, batch_size=BATCH_SIZE, client=sqs)

        for number in range(1, args.repeat + 1):
            print(f"round {number}/{args.repeat}", file=sys.stderr)
            n = len(texts)
            phases = {
                "floor": measure("bare interpreter", n, floor)[0],
                "classifier": measure("Classifier.predict", n, classify)[0],
            }
            phases["submit"], record = measure(
                "maas batch submit", n, partial(batch.submit, data, queue, client=sqs), moto_pid
            )
            with contextlib.redirect_stdout(logs):
                phases["pipeline"], _ = measure(
                    "queue function",
                    n,
                    partial(source.drain, timeout=3600, stop_on_failure=True),
                    moto_pid,
                )
            phases["results"], report = measure(
                "maas batch results",
                n,
                partial(batch.write_results, record.id, work / "results.jsonl"),
                moto_pid,
            )
            dead = sqs.get_queue_attributes(
                QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
            if report.done.texts != n or int(dead):
                raise SystemExit(f"accounting failed: {report.to_dict()}, {dead} dead letters")
            for name, phase in phases.items():
                rounds.setdefault(name, []).append(phase)
    (work / "function.log").write_text(logs.getvalue(), encoding="utf-8")
    # the best round of each phase (least CPU): the machine is shared, noise only adds time
    phases = {name: min(runs, key=lambda phase: phase.cpu) for name, runs in rounds.items()}

    pipeline, bare = phases["pipeline"], phases["floor"]
    return {
        "benchmark": "maas batch throughput",
        "command": args.command,
        "train_command": train_command,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "texts": len(texts),
        "messages": len(record.messages),
        "invocations": len(source.invocations) // args.repeat,
        "batch_size": BATCH_SIZE,
        "texts_per_message_limit": TEXTS_PER_MESSAGE,
        "model_dir": str(model_dir),
        "model": _model_facts(model_dir),
        "phases": {name: phase.to_dict() for name, phase in phases.items()},
        "repeat": args.repeat,
        "ratio_per_core": round(pipeline.per_core / bare.per_core, 3),
        "ratio_wall": round(pipeline.per_second / bare.per_core, 3),
        "accounting": {"done": report.done.texts, "failed": report.failed.texts, "dead": 0},
        "rounds": {name: [phase.to_dict() for phase in runs] for name, runs in rounds.items()},
        "work_dir": str(work),
    }


def _model_facts(model_dir: Path) -> dict[str, Any]:
    manifest = json.loads((model_dir / "manifest.json").read_text(encoding="utf-8"))
    return {
        "preset": manifest.get("preset"),
        "input": manifest.get("input"),
        "tflite_bytes": (model_dir / "model.tflite").stat().st_size,
    }


def machine() -> dict[str, Any]:
    import numpy
    import tflite_runtime

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "tflite_runtime": tflite_runtime.__version__,
        "numpy": numpy.__version__,
    }


def table(result: dict[str, Any]) -> str:
    rows = [
        ("floor: bare interpreter", "floor"),
        ("Classifier.predict", "classifier"),
        ("pipeline: queue function", "pipeline"),
        ("maas batch submit", "submit"),
        ("maas batch results", "results"),
    ]
    lines = [
        f"{result['texts']} texts, {result['messages']} messages, "
        f"{result['invocations']} invocations (batch size {result['batch_size']})",
        "",
        f"| {'phase':<26} | {'wall s':>8} | {'cpu s':>8} | {'texts/cpu-s':>12} | "
        f"{'texts/wall-s':>12} | {'moto cpu s':>10} |",
        f"|{'-' * 28}|{'-' * 9}:|{'-' * 9}:|{'-' * 13}:|{'-' * 13}:|{'-' * 11}:|",
    ]
    for label, key in rows:
        p = result["phases"][key]
        lines.append(
            f"| {label:<26} | {p['wall_s']:>8.2f} | {p['cpu_s']:>8.2f} | "
            f"{p['texts_per_cpu_second']:>12,.0f} | {p['texts_per_wall_second']:>12,.0f} | "
            f"{p['moto_cpu_s']:>10.2f} |"
        )
    lines += [
        "",
        f"pipeline / floor, per core (texts per CPU-second): {result['ratio_per_core']:.2f}",
        f"pipeline wall rate (one consumer) / floor: {result['ratio_wall']:.2f}",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, help="texts to classify (default: 100,000)")
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_TEXTS:,} texts, one round: a smoke run"
    )
    parser.add_argument("--model-dir", type=Path, help="a trained artifact (default: train one)")
    parser.add_argument("--out", type=Path, default=REPO / "bench-results")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds; the table shows each phase's best"
    )
    args = parser.parse_args()
    if args.texts is None:
        args.texts = QUICK_TEXTS if args.quick else 100_000
    if args.quick:
        args.repeat = 1
    args.command = " ".join([".venv/bin/python", "bench/throughput.py", *sys.argv[1:]])
    result = run(args)
    text = table(result)
    print(text)
    stem = Path(result["work_dir"])
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    stem.with_suffix(".md").write_text(text + "\n", encoding="utf-8")
    print(f"\nwritten: {stem.with_suffix('.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
