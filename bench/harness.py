"""`make bench`: the serving path against the TensorFlow baseline and the bare interpreter,
measured side by side in one run.

    .venv/bin/python bench/harness.py [--quick] [--presets seed,default,cnn] [--out bench-results]

For each preset a model is trained through the real training job (cached under
bench-results/models/, keyed by the data, the preset and the training code) and published to
a local store and to S3 (moto server on 127.0.0.1, its own process). Then, per preset:

- cold start: new processes, each from spawn to its first answer: the HTTP function importing
  its handler, loading the model from the store (local directory, S3; and local with X-Ray
  tracing on, as template.yaml deploys it) and answering an API Gateway event; TensorFlow
  (`.venv-train`: import, `load_model` of the Keras model, `predict` of one text); the bare
  floor (import numpy and tflite-runtime, open the .tflite, one invoke). The functions run
  from the `sam build` bundle as Lambda runs them: the function and the layer on PYTHONPATH,
  boto3 from a separate "runtime" directory, an otherwise empty interpreter, no bytecode
  writes (the layer is read-only on Lambda);
- warm latency: single-text API Gateway events through the HTTP handler vs the bare floor
  (tokenizer + tflite-runtime invoke) vs the invoke alone, interleaved in one process; Keras
  `model(x)` and `model.predict(x)` on the same texts (tokenization included everywhere);
- batch throughput: texts per CPU-second of SQS events (1000 texts a message, 25 messages an
  event, results written to S3) through the queue handler vs the bare floor on the same texts;
- memory: peak RSS of every measured process (VmHWM: ru_maxrss would carry the harness's own
  over the exec);
- bundle size: `sam build` output, unzipped and zipped, vs a TensorFlow bundle (bench/bundle.py).

Every figure is the median over repeats with its spread [min-max]; every ratio is computed
from this run's own measurements. Timing is never asserted: the machine is shared.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

import bundle  # noqa: E402
import report  # noqa: E402
from throughput import machine, moto_server  # noqa: E402

DATA = REPO / "data" / "reviews-zh" / "reviews.csv"
TRAIN_PYTHON = REPO / ".venv-train" / "bin" / "python"
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
CHILD = BENCH / "child.py"
HTTP_EVENT = REPO / "events" / "http" / "predict-one.json"
MODEL_NAME = "reviews"  # the name the committed events use
PRESETS = ("seed", "default", "cnn", "bilstm", "transformer")
# shared/Makefile's RUNTIME_PROVIDED: the Lambda runtime's own boto3 and its dependencies
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six.py")
# Files whose change makes a cached model stale.
TRAINING_CODE = ("shared/maas/training", "shared/maas/core", "bench/train_model.py")


@dataclass(frozen=True)
class Settings:
    cold_repeats: int
    warm_rounds: int
    warm_requests: int
    keras_requests: int
    throughput_texts: int
    throughput_rounds: int


FULL = Settings(5, 5, 500, 30, 20_000, 3)
QUICK = Settings(2, 2, 200, 10, 5_000, 2)
TRACED = {
    "POWERTOOLS_TRACE_DISABLED": "false",
    "LAMBDA_TASK_ROOT": "/var/task",  # Powertools traces only inside Lambda
    "_X_AMZN_TRACE_ID": (
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    ),
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
}


# -------------------------------------------------------------------------------- models
@dataclass(frozen=True)
class Model:
    preset: str
    artifact: Path
    keras: Path
    key: str
    trained_now: bool
    train_seconds: float | None


def model_key(preset: str) -> str:
    digest = hashlib.sha256()
    digest.update(f"preset={preset}\n".encode())
    digest.update(DATA.read_bytes())
    for entry in TRAINING_CODE:
        root = REPO / entry
        for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            digest.update(str(path.relative_to(REPO)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_model(preset: str, cache: Path, log: Path) -> Model:
    key = model_key(preset)
    home = cache / f"{preset}-{key}"
    artifact, keras = home / "artifact", home / "model.keras"
    if (artifact / "manifest.json").is_file() and keras.is_file():
        return Model(preset, artifact, keras, key, False, None)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    command = [str(TRAIN_PYTHON), str(BENCH / "train_model.py"), str(keras), str(DATA)]
    command += ["--out", str(artifact), "--preset", preset]
    note(f"training the {preset} preset (cached afterwards under {home.relative_to(REPO)})")
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as handle:
        done = subprocess.run(command, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        shutil.rmtree(home, ignore_errors=True)
        raise SystemExit(f"training failed ({done.returncode}); see {log}")
    from maas.store.publishing import adopt_serving_runtime

    adopt_serving_runtime(artifact)  # as `maas train` does: golden examples from tflite-runtime
    return Model(preset, artifact, keras, key, True, time.perf_counter() - started)


# ---------------------------------------------------------------------------- processes
@dataclass(frozen=True)
class Interpreter:
    """How to start a measured process: the executable, its flags and its environment."""

    name: str
    argv: tuple[str, ...]
    env: dict[str, str]


def lambda_interpreter(build: Path, cache: Path) -> Interpreter:
    """A bare Python 3.11 (a venv with nothing installed) that sees what Lambda's sees: the
    layer (/opt/python) and the runtime's boto3; the function's directory is added by the
    child. PYTHONDONTWRITEBYTECODE: on Lambda the layer is read-only, so no bytecode is
    cached between cold starts unless the layer ships it."""
    venv = cache / "lambda-python"
    if not (venv / "bin" / "python").exists():
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True)
    runtime = cache / "lambda-runtime"
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    runtime.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PACKAGES:
        link = runtime / name
        if not link.exists():
            link.symlink_to(site / name)
    env = clean_env()
    env.update(
        PYTHONPATH=f"{build / 'SharedLayer' / 'python'}:{runtime}",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONNOUSERSITE="1",
    )
    return Interpreter("lambda", (str(venv / "bin" / "python"),), env)


def venv_interpreter() -> Interpreter:
    return Interpreter("venv", (str(VENV_PYTHON),), clean_env())


def train_interpreter() -> Interpreter:
    return Interpreter(
        "tensorflow",
        (str(TRAIN_PYTHON),),
        dict(clean_env(), TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""),
    )


def clean_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_TRACE_DISABLED="true",  # no X-Ray daemon here (see the report's notes)
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_METRICS_NAMESPACE="maas",  # metrics on, as deployed; the output is dropped
        PYTHONHASHSEED="0",
    )
    return env


class Runner:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.count = 0

    def run(
        self,
        interpreter: Interpreter,
        mode: str,
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 600,
    ) -> dict[str, Any]:
        self.count += 1
        stem = f"{self.count:04d}-{mode}"
        result, log = self.work / "results" / f"{stem}.json", self.work / "logs" / f"{stem}.log"
        command = [*interpreter.argv, str(CHILD), mode, str(result), *args]
        with log.open("w", encoding="utf-8") as handle:
            spawned = time.perf_counter()
            done = subprocess.run(
                command,
                env=dict(interpreter.env, **(env or {})),
                cwd=self.work,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
        if done.returncode != 0 or not result.is_file():
            tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
            raise SystemExit(f"{mode} failed (exit {done.returncode}), {log}:\n{tail}")
        measured: dict[str, Any] = json.loads(result.read_text(encoding="utf-8"))
        if "started" in measured:
            measured["python_start_s"] = measured["started"] - spawned
            measured["total_s"] = measured["answered"] - spawned
        return measured


# ------------------------------------------------------------------------------- texts
def texts(work: Path, count: int) -> tuple[Path, Path]:
    """Real reviews: for single requests a random sample ("review") and the short ones
    ("short", at most 12 characters: a few words); `count` of them for the batch runs."""
    with DATA.open(encoding="utf-8", newline="") as handle:
        pool = [row["text"] for row in csv.DictReader(handle)]
    rng = random.Random(5)
    single = {
        "review": rng.sample(pool, 500),
        "short": [text for text in pool if len(text) <= 12],
    }
    batch = {"all": [pool[i % len(pool)] for i in range(count)]}
    paths = work / "texts-single.json", work / "texts-batch.json"
    for path, content in zip(paths, (single, batch), strict=True):
        path.write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
    return paths


# ---------------------------------------------------------------------------------- run
def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = QUICK if args.quick else FULL
    out: Path = args.out.resolve()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    work = out / f"bench-{stamp}"
    for sub in ("results", "logs", "stores", "caches"):
        (work / sub).mkdir(parents=True)
    cache = out / "models"
    cache.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    models = {p: ensure_model(p, cache, work / "logs" / f"train-{p}.log") for p in args.presets}

    if args.build_dir:
        build, build_seconds = args.build_dir.resolve(), None
    else:
        note("sam build")
        build = work / "sam-build"
        build_seconds = bundle.sam_build(build, work / "logs" / "sam-build.log")
    lam = lambda_interpreter(build, cache) if not args.venv else venv_interpreter()
    tf = train_interpreter()
    single_texts, batch_texts = texts(work, settings.throughput_texts)
    runner = Runner(work)
    functions = {
        "http": build / "PredictFunction" if not args.venv else REPO / "functions" / "http",
        "queue": build / "BatchFunction" if not args.venv else REPO / "functions" / "queue",
    }
    results: dict[str, Any] = {"presets": {}}

    with moto_server() as (endpoint, _moto_pid):
        import boto3

        os.environ.update(
            AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_ENDPOINT_URL=endpoint
        )
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in ("bench-models", "bench-sink"):
            s3.create_bucket(Bucket=bucket)
        from maas.store import ModelStore
        from maas.store.signing import open_signer

        # versions are signed, as `maas publish` signs them, and the functions verify them
        signing_key = work / "signing.key"
        signer = open_signer(str(signing_key), create=True)
        stores: dict[str, dict[str, str]] = {}
        for preset, model in models.items():
            local = work / "stores" / preset
            stores[preset] = {"local": str(local), "s3": f"s3://bench-models/{preset}"}
            for uri in stores[preset].values():
                store = ModelStore.open(uri, signer)
                store.publish(model.artifact, MODEL_NAME, alias="production")

        def function_env(preset: str, store: str, function: str) -> dict[str, str]:
            return {
                "AWS_ENDPOINT_URL": endpoint,
                "MAAS_STORE": stores[preset][store],
                "MAAS_MODEL_NAME": MODEL_NAME,
                "MAAS_MODEL_ALIAS": "production",
                "MAAS_CACHE_DIR": str(work / "caches" / uuid.uuid4().hex),  # empty: a new /tmp
                "MAAS_RESULTS": f"s3://bench-sink/{preset}",
                "MAAS_MAX_TEXTS": "1000",
                "MAAS_SIGNING_KEY": str(signing_key),
                "POWERTOOLS_SERVICE_NAME": f"maas-{function}",
            }

        # cold starts, interleaved so that the machine's noise spreads over every variant
        note(f"cold starts: {settings.cold_repeats} of each variant")
        cold: dict[str, dict[str, list[dict[str, Any]]]] = {p: {} for p in models}
        for _ in range(settings.cold_repeats):
            for preset, model in models.items():
                variants = {
                    "handler_local": (
                        lam,
                        "cold-handler",
                        ["--function-dir", str(functions["http"]), "--event", str(HTTP_EVENT)],
                        function_env(preset, "local", "http"),
                    ),
                    "handler_s3": (
                        lam,
                        "cold-handler",
                        ["--function-dir", str(functions["http"]), "--event", str(HTTP_EVENT)],
                        function_env(preset, "s3", "http"),
                    ),
                    # as deployed (template.yaml: Tracing: Active): Powertools loads the X-Ray
                    # SDK and patches botocore; segments go to 127.0.0.1:2000 (UDP, unheard)
                    "handler_local_traced": (
                        lam,
                        "cold-handler",
                        ["--function-dir", str(functions["http"]), "--event", str(HTTP_EVENT)],
                        {**function_env(preset, "local", "http"), **TRACED},
                    ),
                    "tensorflow": (
                        tf,
                        "cold-keras",
                        [
                            "--keras",
                            str(model.keras),
                            "--tokenizer",
                            str(model.artifact / "tokenizer.json"),
                            "--text",
                            json.loads(json.loads(HTTP_EVENT.read_text(encoding="utf-8"))["body"])[
                                "text"
                            ],
                        ],
                        {},
                    ),
                    "bare": (
                        lam,
                        "cold-bare",
                        ["--model", str(model.artifact / "model.tflite")],
                        {},
                    ),
                }
                for name, (interpreter, mode, child_args, env) in variants.items():
                    measured = runner.run(interpreter, mode, *child_args, env=env, timeout=300)
                    cold[preset].setdefault(name, []).append(measured)

        for preset, model in models.items():
            note(f"{preset}: warm latency")
            warm = runner.run(
                lam,
                "warm-handler",
                *("--function-dir", str(functions["http"]), "--event", str(HTTP_EVENT)),
                *("--texts", str(single_texts), "--model-dir", str(model.artifact)),
                *("--rounds", str(settings.warm_rounds)),
                *("--requests", str(settings.warm_requests)),
                env=function_env(preset, "local", "http"),
            )
            keras = runner.run(
                tf,
                "warm-keras",
                *("--keras", str(model.keras), "--texts", str(single_texts)),
                *("--tokenizer", str(model.artifact / "tokenizer.json")),
                *("--rounds", str(settings.warm_rounds)),
                *("--requests", str(settings.keras_requests)),
            )
            note(f"{preset}: batch throughput ({settings.throughput_texts} texts a round)")
            batch = runner.run(
                lam,
                "throughput",
                *("--function-dir", str(functions["queue"]), "--texts", str(batch_texts)),
                *("--model-dir", str(model.artifact)),
                *("--rounds", str(settings.throughput_rounds)),
                env=function_env(preset, "s3", "queue"),
            )
            note(f"{preset}: explanations (faithfulness on the test split, latency)")
            explained = explanations(model, work, settings)
            results["presets"][preset] = {
                "model": model_facts(model),
                "cold": cold[preset],
                "warm": warm,
                "keras": keras,
                "throughput": batch,
                "explain": explained,
            }

    note("bundle sizes")
    sizes = {"ours": bundle.ours(build, work)}
    if not args.no_tensorflow_size:
        sizes["tensorflow"] = bundle.tensorflow_closure(cache, work)
    shutil.rmtree(work / "caches", ignore_errors=True)
    if not args.keep:  # the logs and per-process results stay; the big copies go
        for bulky in ("sam-build", "stores"):
            if (work / bulky) != build:
                shutil.rmtree(work / bulky, ignore_errors=True)
    results.update(
        benchmark="maas serving vs TensorFlow vs the bare interpreter",
        command=args.command,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=machine(),
        settings=settings.__dict__,
        interpreter=lam.name,
        build_dir=str(build),
        sam_build_seconds=build_seconds,
        bundle=sizes,
        work_dir=str(work),
        seconds=round(time.perf_counter() - started, 1),
    )
    return results


SPLIT_SCRIPT = """
import json, sys
from maas.training import splits
data = splits.load(sys.argv[1], "text", "label", int(sys.argv[3]))
with open(sys.argv[2], "w", encoding="utf-8") as handle:
    json.dump(data.test.texts, handle, ensure_ascii=False)
"""


def explanations(model: Model, work: Path, settings: Settings) -> dict[str, Any]:
    """bench/faithfulness.py on the model's own test split (the training job's seeded split,
    written by the training environment, which has scikit-learn), in the serving one."""
    manifest = json.loads((model.artifact / "manifest.json").read_text(encoding="utf-8"))
    seed = str(manifest.get("hyperparameters", {}).get("seed", 42))
    texts = work / f"test-texts-{model.preset}.json"
    subprocess.run(
        [str(TRAIN_PYTHON), "-c", SPLIT_SCRIPT, str(DATA), str(texts), seed], cwd=REPO, check=True
    )
    out = work / "results" / f"explain-{model.preset}.json"
    command = [str(VENV_PYTHON), str(BENCH / "faithfulness.py"), "--artifact", str(model.artifact)]
    command += ["--texts", str(texts), "--out", str(out), "--repeats", str(settings.warm_requests)]
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


def model_facts(model: Model) -> dict[str, Any]:
    manifest = json.loads((model.artifact / "manifest.json").read_text(encoding="utf-8"))
    return {
        "preset": model.preset,
        "key": model.key,
        "artifact": str(model.artifact),
        "trained_now": model.trained_now,
        "train_seconds": model.train_seconds,
        "input": manifest.get("input"),
        "buckets": manifest.get("buckets"),
        "tflite_bytes": (model.artifact / "model.tflite").stat().st_size,
        "keras_bytes": model.keras.stat().st_size,
        "accuracy": manifest.get("metrics", {}).get("quantized", {}).get("accuracy"),
    }


def note(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and texts")
    parser.add_argument(
        "--presets",
        type=lambda text: [p for p in text.split(",") if p],
        default=list(PRESETS),
        help="comma-separated (default: seed,default,cnn,bilstm,transformer)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench-results")
    parser.add_argument(
        "--build-dir", type=Path, help="reuse a `sam build` output instead of building one"
    )
    parser.add_argument(
        "--venv",
        action="store_true",
        help="run the functions from .venv instead of the sam build bundle",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the run's sam build and stores (~90 MB)"
    )
    parser.add_argument(
        "--no-tensorflow-size",
        action="store_true",
        help="skip sizing the TensorFlow bundle (zipping it takes a minute the first time)",
    )
    args = parser.parse_args()
    unknown = set(args.presets) - set(PRESETS)
    if unknown:
        parser.error(f"unknown presets: {', '.join(sorted(unknown))}")
    args.command = " ".join([".venv/bin/python", "bench/harness.py", *sys.argv[1:]])
    results = run(args)
    summary = report.summarize(results)
    results["summary"] = summary
    text = report.table(results)
    print(text)
    stem = Path(results["work_dir"])
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    stem.with_suffix(".md").write_text(text + "\n", encoding="utf-8")
    note(f"written: {stem.with_suffix('.json')} and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
