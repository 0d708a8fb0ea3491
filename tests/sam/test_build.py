"""`sam build` output: what Lambda would receive. (The build itself runs before the tests:
`make sam-build`; these tests read .aws-sam/build.)"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import open_store

from maas.local.lambda_runtime import load_event
from sam import samlocal

pytestmark = pytest.mark.sam

# Training-only packages that must never reach a function: TensorFlow alone is ~600 MB and
# seconds of cold start (the functions use tflite-runtime).
TRAINING_ONLY = (
    "tensorflow",
    "tensorflow_cpu",
    "tensorflow_intel",
    "keras",
    "tf_keras",
    "tensorboard",
)
# Lambda's limit for a function's code plus all its layers, unzipped.
UNZIPPED_LIMIT = 250 * 1024 * 1024
# What the Lambda Python runtime provides besides the standard library (shared/Makefile's
# RUNTIME_PROVIDED): the functions get boto3 from there, never from the layer.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six.py")
TRAIN_SITE = next((samlocal.REPO / ".venv-train" / "lib").glob("python3*/site-packages"), None)
# ServingRuntime -> the layer sam build made for it, its interpreter package, and an environment
# of the same Python (its interpreter runs the functions with -S: nothing of its own on the path).
LAYERS = {
    "tflite-runtime": ("SharedLayer", "tflite_runtime", samlocal.REPO / ".venv"),
    "litert": ("SharedLayerLiteRT", "ai_edge_litert", samlocal.REPO / ".venv-litert"),
}
ARM64_BUILD = samlocal.BUILD_DIR.with_name("build-litert-arm64")
ELF_MACHINES = {62: "x86_64", 183: "aarch64"}


def layer_python(runtime: str, build: Path = samlocal.BUILD_DIR) -> Path:
    return build / LAYERS[runtime][0] / "python"


def elf_machines(folder: Path) -> dict[str, int]:
    """The machine type of every shared library under `folder` (e_machine of its ELF header)."""
    found: dict[str, int] = {}
    for path in folder.rglob("*.so*"):
        head = path.read_bytes()[:20] if path.is_file() else b""
        if head[:4] == b"\x7fELF":
            found[str(path.relative_to(folder))] = int.from_bytes(head[18:20], "little")
    return found


def size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def test_the_built_bundle_has_no_tensorflow(sam_built: None) -> None:
    found = [
        str(path.relative_to(samlocal.BUILD_DIR))
        for path in samlocal.BUILD_DIR.rglob("*")
        if path.is_dir()
        and (
            path.name.lower() in TRAINING_ONLY
            or (
                path.name.endswith(".dist-info")
                and path.name.split("-")[0].lower() in TRAINING_ONLY
            )
        )
    ]
    assert found == []
    for runtime, (_, package, _) in LAYERS.items():
        assert (layer_python(runtime) / package).is_dir(), runtime


@pytest.mark.parametrize(
    ("runtime", "build"),
    [
        ("tflite-runtime", samlocal.BUILD_DIR),
        ("litert", samlocal.BUILD_DIR),
        ("litert", ARM64_BUILD),  # tflite-runtime has no arm64 layer (shared/Makefile)
    ],
    ids=["tflite-runtime", "litert", "litert-arm64"],
)
def test_the_layer_ships_exactly_the_allow_listed_maas_modules(
    sam_built: None, runtime: str, build: Path
) -> None:
    python = layer_python(runtime, build)
    shipped = sorted(
        str(path.relative_to(python))
        for path in (python / "maas").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    )
    assert shipped == sorted(samlocal.layer_modules())
    for absent in ("maas/cli", "maas/client", "maas/local", "maas/training"):
        assert not (python / absent).exists(), absent


@pytest.mark.parametrize("runtime", sorted(LAYERS))
def test_each_function_with_its_layer_fits_lambdas_size_limit(
    sam_built: None, runtime: str
) -> None:
    for build in (samlocal.BUILD_DIR, ARM64_BUILD):
        layer = size(build / LAYERS[runtime][0])
        for function in ("PredictFunction", "BatchFunction"):
            total = size(build / function) + layer
            assert total < UNZIPPED_LIMIT, f"{function} + layer: {total / 2**20:.0f} MiB unzipped"


@pytest.mark.parametrize("runtime", sorted(LAYERS))
def test_each_build_carries_the_wheels_of_its_architecture(sam_built: None, runtime: str) -> None:
    """`make sam-build` builds the defaults (x86_64) and ServingRuntime=litert on arm64 (both
    layers): every shared library in a layer is for the architecture it was built for, and the
    arm64 build's template holds the LiteRT layer."""
    builds = [(samlocal.BUILD_DIR, 62), (ARM64_BUILD, 183)]
    if runtime == "tflite-runtime":  # no arm64 wheel Lambda's python3.11 can load: left empty
        assert list((ARM64_BUILD / LAYERS[runtime][0]).rglob("*")) == [
            ARM64_BUILD / LAYERS[runtime][0] / "python"
        ]
        builds = builds[:1]
    for build, machine in builds:
        machines = elf_machines(build / LAYERS[runtime][0])
        assert machines, f"no shared libraries in {build.name}'s {runtime} layer"
        wrong = {name: ELF_MACHINES.get(m, m) for name, m in machines.items() if m != machine}
        assert wrong == {}, f"{build.name}: not {ELF_MACHINES[machine]}"
    overrides = (ARM64_BUILD / "template.yaml").read_text(encoding="utf-8")
    assert "SharedLayerLiteRT" in overrides


PROBE = """
import importlib.util, json, sys
assert importlib.util.find_spec("tensorflow") is not None, "TensorFlow should be importable here"
events = json.loads(sys.argv[1])
answers = {}
for name, function_dir in (("http", sys.argv[2]), ("queue", sys.argv[3])):
    sys.path.insert(0, function_dir)
    spec = importlib.util.spec_from_file_location("app_" + name, function_dir + "/app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    sys.path.remove(function_dir)
    context = type("Context", (), {
        "function_name": name, "function_version": "1", "memory_limit_in_mb": 1024,
        "invoked_function_arn": "arn:aws:lambda:us-east-1:1:function:" + name,
        "aws_request_id": "r", "get_remaining_time_in_millis": lambda self: 30000,
    })()
    answers[name] = app.handler(events[name], context)
maas = sorted(m.__file__ for n, m in sys.modules.items() if n.split(".")[0] == "maas")
heavy = sorted(n for n in sys.modules if n.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
from maas.core.classifier import runtime_name
report = {"answers": answers, "maas": maas, "heavy": heavy, "runtime": runtime_name()}
print(json.dumps({**report, "python": sys.version.split()[0]}))
"""


@pytest.mark.parametrize("serving_runtime", sorted(LAYERS))
def test_the_functions_run_with_only_the_layer_and_never_import_tensorflow(
    sam_built: None, trained_model: Path, tmp_path: Path, serving_runtime: str
) -> None:
    """Both built functions, imported the way Lambda does (the function's folder, the layer,
    the runtime's boto3 and nothing else, no site-packages) and answering one event each. The
    training environment's packages come last on the path: TensorFlow is importable, and must
    not be imported. Every maas module they load comes from the layer, and every module of the
    layer's allow-list is loaded (the list holds nothing the functions do not use). Once per
    ServingRuntime: its layer on its Python (3.11 with tflite-runtime, 3.13 with LiteRT)."""
    assert TRAIN_SITE is not None, "no .venv-train: run `make install`"
    _, package, venv = LAYERS[serving_runtime]
    python = layer_python(serving_runtime)
    assert (venv / "bin" / "python").is_file(), f"no {venv.name}: run `make install`"
    store = tmp_path / "store"
    open_store(store).publish(trained_model, "reviews", alias="production")
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    site = next((venv / "lib").glob("python3*/site-packages"))
    for name in RUNTIME_PROVIDED:
        (runtime / name).symlink_to(site / name)
    events = {
        "http": load_event("http", "predict-one"),
        "queue": load_event("sqs", "good-batch"),
    }
    path = [str(python), str(runtime), str(TRAIN_SITE)]
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": ":".join(path),
        "PYTHONDONTWRITEBYTECODE": "1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MAAS_STORE": str(store),
        "MAAS_MODEL_NAME": "reviews",
        "MAAS_CACHE_DIR": str(tmp_path / "cache"),
        "MAAS_RESULTS": str(tmp_path / "results"),
        "MAAS_SIGNING_KEY": os.environ["MAAS_SIGNING_KEY"],
    }
    functions = [str(samlocal.BUILD_DIR / f) for f in ("PredictFunction", "BatchFunction")]
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-S", "-c", PROBE, json.dumps(events), *functions],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["heavy"] == []
    assert report["answers"]["http"]["statusCode"] == 200
    assert report["answers"]["queue"] == {"batchItemFailures": []}
    assert report["runtime"].startswith(package.replace("_", "-")), report["runtime"]
    assert report["python"].startswith("3.11" if serving_runtime == "tflite-runtime" else "3.13")
    loaded = sorted(
        str(Path(file).relative_to(python)) for file in report["maas"]
    )  # relative_to raises for a module from anywhere else
    assert loaded == sorted(m for m in samlocal.layer_modules() if m.endswith(".py"))
