"""One peer of bench/peers.py, measured in its own process and its own environment.

    ENV/bin/python bench/peer_child.py PEER MODE MODEL_DIR TEXTS RESULT

PEER is how the texts become probabilities (the same model file, tokenizer and texts for all):

- maas:         `Classifier.predict`, one text per call, on whichever interpreter this
                environment has (tflite-runtime 2.14 in .venv, LiteRT in .venv-litert);
- onnxruntime:  the model tf2onnx converted from the .tflite, in an `InferenceSession`;
- tensorflow:   TensorFlow's own TFLite interpreter (`tf.lite.Interpreter`) on the .tflite;
- sklearn:      TF-IDF + logistic regression over the same tokens (bench/peers.py trains it on
                the model's training split and pickles it beside the model).

Every peer but sklearn reads the maas tokenizer's ids (the tokenizer is part of the model).

MODE `cold` exits after the first answer (the parent times the process from spawn); `warm`
measures import, load, single-text latency, texts per CPU-second, peak RSS, the installed
size of what the peer imports, and writes every text's probabilities for the agreement check.
For the maas peer it also measures its floor: the same tokenizer and interpreter with nothing
else (set_tensor, invoke, get_tensor), interleaved round by round with `Classifier.predict`.
"""

from __future__ import annotations

import json
import os
import sys
import time

STARTED = time.perf_counter()

from collections.abc import Callable, Iterable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

Predict = Callable[[str], list[float]]
# The distributions each peer needs to run the model (numpy and the inference library, with
# their dependencies; for maas the Lambda layer adds Powertools and pydantic). boto3 and
# its dependencies are not counted: the Lambda runtime provides them (closure.RUNTIME_PROVIDED).
ROOTS = {
    "maas": ("numpy", "tflite-runtime", "ai-edge-litert"),
    "onnxruntime": ("numpy", "onnxruntime"),
    "tensorflow": ("numpy", "tensorflow-cpu", "tensorflow"),
    "sklearn": ("numpy", "scikit-learn"),
}
WARM_CALLS = 1000
ROUNDS = 3
CHUNK = 50


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def footprint(roots: Iterable[str]) -> dict[str, Any]:
    """Installed size of `roots` and everything they require (what a bundle would carry),
    bytecode caches excluded."""
    from closure import closure  # bench/closure.py, beside this script

    versions, files = closure(roots)
    paths = [Path(f) for f in files if "__pycache__" not in Path(f).parts]
    size = sum(path.stat().st_size for path in paths if path.is_file())
    return {"mb": size / 1e6, "distributions": sorted(versions)}


# ------------------------------------------------------------------------------ the peers
def tokenizer_ids(model_dir: Path) -> tuple[Callable[[str], Any], int]:
    """The maas tokenizer's padded ids for one text, as the model file reads them."""
    from maas.core.tokenizer import Tokenizer

    tokenizer = Tokenizer.load(model_dir / "tokenizer.json")
    length = tokenizer.spec.max_length
    return (lambda text: tokenizer.encode([text], length)), length


def with_binary(row: Any) -> list[float]:
    values = [float(v) for v in row]
    return [1.0 - values[0], values[0]] if len(values) == 1 else values


def tflite(interpreter: Any) -> Callable[[Any], Any]:
    interpreter.allocate_tensors()
    (given,) = interpreter.get_input_details()
    output = interpreter.get_output_details()[0]["index"]

    def run(ids: Any) -> Any:
        interpreter.set_tensor(given["index"], ids)
        interpreter.invoke()
        return interpreter.get_tensor(output)[0]

    return run


def load(peer: str, model_dir: Path) -> tuple[Predict, dict[str, Any]]:
    facts: dict[str, Any] = {}
    if peer == "maas":
        from maas.core.classifier import Classifier

        facts["import_s"] = time.perf_counter() - STARTED
        classifier = Classifier.open(model_dir)
        labels = classifier.labels
        facts["runtime"] = classifier.runtime

        def predict(text: str) -> list[float]:
            scores = classifier.predict([text])[0].scores
            return [scores[label] for label in labels]

        facts["classifier"] = classifier
        return predict, facts
    if peer == "sklearn":
        import pickle

        import sklearn

        facts["import_s"] = time.perf_counter() - STARTED
        facts["runtime"] = f"scikit-learn {sklearn.__version__}"
        with (model_dir / "baseline.pickle").open("rb") as handle:
            pipeline = pickle.load(handle)  # written by bench/peers.py from this run's data
        return (lambda text: [float(p) for p in pipeline.predict_proba([text])[0]]), facts
    encode, _ = tokenizer_ids(model_dir)
    if peer == "onnxruntime":
        import onnxruntime

        facts["import_s"] = time.perf_counter() - STARTED
        facts["runtime"] = f"onnxruntime {onnxruntime.__version__}"
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(model_dir / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        name = session.get_inputs()[0].name
        return (lambda text: with_binary(session.run(None, {name: encode(text)})[0][0])), facts
    if peer == "tensorflow":
        import tensorflow as tf

        facts["import_s"] = time.perf_counter() - STARTED
        facts["runtime"] = f"tensorflow {tf.__version__} (tf.lite.Interpreter)"
        run = tflite(tf.lite.Interpreter(model_path=str(model_dir / "model.tflite"), num_threads=1))
        return (lambda text: with_binary(run(encode(text)))), facts
    raise SystemExit(f"unknown peer {peer}")


def floor(model_dir: Path, interpreter_class: Any) -> Callable[[str], Any]:
    """The maas peer's floor: its tokenizer and its interpreter, nothing else."""
    encode, _ = tokenizer_ids(model_dir)
    run = tflite(interpreter_class(model_path=str(model_dir / "model.tflite"), num_threads=1))
    return lambda text: run(encode(text))


# -------------------------------------------------------------------------------- measuring
def cpu_seconds(call: Callable[[str], Any], texts: list[str]) -> float:
    cpu = time.process_time_ns()
    for text in texts:
        call(text)
    return (time.process_time_ns() - cpu) / 1e9


def warm(peer: str, model_dir: Path, texts: dict[str, list[str]]) -> dict[str, Any]:
    predict, facts = load(peer, model_dir)
    loaded = time.perf_counter()
    predict(texts["single"][0])
    facts["first_answer_s"] = time.perf_counter() - loaded
    facts["load_s"] = loaded - STARTED - facts["import_s"]
    latencies = []
    for text in (texts["single"] * (WARM_CALLS // len(texts["single"]) + 1))[:WARM_CALLS]:
        begin = time.perf_counter_ns()
        predict(text)
        latencies.append((time.perf_counter_ns() - begin) / 1e6)
    latencies.sort()
    facts["p50_ms"] = latencies[len(latencies) // 2]
    facts["p99_ms"] = latencies[int(len(latencies) * 0.99)]
    calls: dict[str, Callable[[str], Any]] = {"predict": predict}
    classifier = facts.pop("classifier", None)
    if classifier is not None:
        from maas.core.classifier import _interpreter_class

        bare = floor(model_dir, _interpreter_class()[0])
        calls = {"predict": lambda text: classifier.predict([text]), "floor": bare}
    rounds: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(ROUNDS):
        # interleaved in chunks of CHUNK texts, so that the machine's drift (a shared host's
        # clock and neighbours) falls on both sides of the floor ratio alike
        cpu = dict.fromkeys(calls, 0.0)
        batch = texts["batch"]
        for start in range(0, len(batch), CHUNK):
            chunk = batch[start : start + CHUNK]
            for name, call in calls.items():
                cpu[name] += cpu_seconds(call, chunk)
        for name in calls:
            rounds[name].append(len(batch) / cpu[name])
    facts["texts_per_cpu_s"] = sorted(rounds["predict"])[ROUNDS // 2]
    if "floor" in rounds:
        facts["floor_texts_per_cpu_s"] = sorted(rounds["floor"])[ROUNDS // 2]
        ratios = [p / f for p, f in zip(rounds["predict"], rounds["floor"], strict=True)]
        facts["of_floor"] = sorted(ratios)[ROUNDS // 2]
    facts["rounds"] = rounds
    facts["peak_rss_mib"] = peak_rss_mib()
    facts["footprint"] = footprint(ROOTS[peer])
    facts["python"] = sys.version.split()[0]
    facts["probabilities"] = [predict(text) for text in texts["agreement"]]
    return facts


def main(argv: list[str]) -> int:
    peer, mode, model_dir, texts_path, result = argv
    texts = json.loads(Path(texts_path).read_text(encoding="utf-8"))
    if mode == "cold":
        predict, _ = load(peer, Path(model_dir))
        predict(texts["single"][0])
        out: dict[str, Any] = {"peak_rss_mib": peak_rss_mib()}
    else:
        out = warm(peer, Path(model_dir), texts)
    Path(result).write_text(json.dumps(out), encoding="utf-8")
    sys.stdout.flush()
    os._exit(0)  # teardown is not part of any measurement


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
