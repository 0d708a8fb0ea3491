"""`make bench`'s peer table: maas against what a user would serve a text classifier with
instead, side by side in one run, on the same model, tokenizer and texts.

    .venv/bin/python bench/peers.py [--quick] [--presets default,seed] [--out bench-results]

Peers (bench/peer_child.py runs each in its own process and environment):

- maas on tflite-runtime 2.14 (.venv, Python 3.11, numpy<2: the ServingRuntime=tflite-runtime
  layer) and maas on LiteRT (.venv-litert, Python 3.13, numpy 2: ServingRuntime=litert);
- ONNX Runtime on the model tf2onnx converts from the same .tflite file;
- TensorFlow's own TFLite interpreter (`tf.lite.Interpreter`) on the same file;
- scikit-learn TF-IDF + logistic regression, fitted on the model's own training split (the
  training job's baseline), serving probabilities with `predict_proba`.

Measured per peer: cold start (spawn to first answer, median of the repeats), import and load
time, warm p50/p99 of one text per call, texts per CPU-second (one text per call), peak RSS,
the installed size of what it imports (its bundle, boto3 aside), and agreement with maas on
tflite-runtime (largest probability difference, share of equal labels). For both maas peers,
`Classifier.predict` is also measured against its floor (the same tokenizer and interpreter,
nothing else), round by round in one process. JSON and Markdown go to bench-results/.
Timing is never asserted: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CHILD = BENCH / "peer_child.py"
DATA = REPO / "data" / "reviews-zh" / "reviews.csv"
TRAIN_PYTHON = REPO / ".venv-train" / "bin" / "python"
SEED = 42  # the training job's default split seed (maas.training.options.DEFAULT_SEED)


@dataclass(frozen=True)
class Peer:
    name: str
    kind: str  # peer_child.py's PEER
    python: Path


PEERS = (
    Peer("maas · tflite-runtime 2.14", "maas", REPO / ".venv" / "bin" / "python"),
    Peer("maas · LiteRT", "maas", REPO / ".venv-litert" / "bin" / "python"),
    Peer("ONNX Runtime", "onnxruntime", TRAIN_PYTHON),
    Peer("TensorFlow tf.lite", "tensorflow", TRAIN_PYTHON),
    Peer("scikit-learn TF-IDF + LR", "sklearn", TRAIN_PYTHON),
)
REFERENCE = PEERS[0].name


# ------------------------------------------------------------------- preparing the models
def prepare(model_dir: Path) -> dict[str, Any]:
    """In .venv-train: the ONNX conversion of the model file and the fitted baseline, written
    into `model_dir` (a copy of the artifact). Returns what happened to each."""
    import pickle

    from maas.core.tokenizer import Tokenizer
    from maas.training import baseline, splits

    facts: dict[str, Any] = {}
    started = time.perf_counter()
    converted = subprocess.run(
        [
            sys.executable,
            "-m",
            "tf2onnx.convert",
            "--tflite",
            str(model_dir / "model.tflite"),
            "--output",
            str(model_dir / "model.onnx"),
            "--opset",
            "17",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if converted.returncode == 0 and (model_dir / "model.onnx").is_file():
        facts["onnx"] = {"converted": True, "seconds": time.perf_counter() - started}
    else:
        error = [line for line in converted.stderr.splitlines() if "Error" in line]
        facts["onnx"] = {"converted": False, "error": (error or ["?"])[-1][-300:]}
    data = splits.load(DATA, "text", "label", SEED)
    spec = Tokenizer.load(model_dir / "tokenizer.json").spec
    pipeline = baseline.fit(spec, data.train.texts, data.train.y, SEED)
    with (model_dir / "baseline.pickle").open("wb") as handle:
        pickle.dump(pipeline, handle)
    facts["sklearn"] = {"train_texts": len(data.train.texts)}
    return facts


# ---------------------------------------------------------------------------------- texts
def write_texts(path: Path, quick: bool) -> None:
    import csv

    with DATA.open(encoding="utf-8", newline="") as handle:
        pool = [row["text"] for row in csv.DictReader(handle)]
    rng = random.Random(7)
    sample = rng.sample(pool, 300)
    count = 1_000 if quick else 3_000
    texts = {
        "single": sample[:200],
        "batch": [pool[i % len(pool)] for i in range(count)],
        "agreement": pool,  # every text of the dataset
    }
    path.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")


# -------------------------------------------------------------------------------- running
def child(peer: Peer, mode: str, model_dir: Path, texts: Path, result: Path) -> float:
    """Run one measured process; returns its wall time from spawn to exit."""
    started = time.perf_counter()
    done = subprocess.run(
        [str(peer.python), str(CHILD), peer.kind, mode, str(model_dir), str(texts), str(result)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=900,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{peer.name} {mode}: exit {done.returncode}: {done.stderr[-2000:]}")
    return wall


def agreement(reference: list[list[float]], other: list[list[float]]) -> dict[str, float]:
    worst = max(
        abs(a - b)
        for ra, rb in zip(reference, other, strict=True)
        for a, b in zip(ra, rb, strict=True)
    )
    same = sum(
        max(range(len(ra)), key=ra.__getitem__) == max(range(len(rb)), key=rb.__getitem__)
        for ra, rb in zip(reference, other, strict=True)
    )
    return {"max_abs_diff": worst, "same_label": same / len(reference)}


def measure(model_dir: Path, work: Path, cold_repeats: int, log: Any) -> dict[str, Any]:
    texts = work / "texts.json"
    peers = [p for p in PEERS if p.kind != "onnxruntime" or (model_dir / "model.onnx").is_file()]
    cold: dict[str, list[float]] = {p.name: [] for p in peers}
    for number in range(cold_repeats):  # interleaved: each round starts every peer once
        for peer in peers:
            log(f"cold {number + 1}/{cold_repeats}: {peer.name}")
            cold[peer.name].append(child(peer, "cold", model_dir, texts, work / "cold.json"))
    results: dict[str, Any] = {}
    for peer in peers:
        log(f"warm: {peer.name}")
        out = work / f"warm-{peer.kind}-{peer.python.parent.parent.name}.json"
        child(peer, "warm", model_dir, texts, out)
        facts = json.loads(out.read_text(encoding="utf-8"))
        facts["cold_s"] = statistics.median(cold[peer.name])
        facts["cold_runs_s"] = cold[peer.name]
        results[peer.name] = facts
    reference = results[REFERENCE]["probabilities"]
    for facts in results.values():
        facts["agreement"] = agreement(reference, facts.pop("probabilities"))
    return results


def run(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(BENCH))
    import harness
    from throughput import machine

    out: Path = args.out.resolve()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    work = out / f"peers-{stamp}"
    work.mkdir(parents=True)
    write_texts(work / "texts.json", args.quick)
    results: dict[str, Any] = {"presets": {}, "machine": machine()}
    for preset in args.presets:
        model = harness.ensure_model(preset, out / "models", work / f"train-{preset}.log")
        model_dir = work / preset
        shutil.copytree(model.artifact, model_dir)
        harness.note(f"{preset}: converting to ONNX and fitting the scikit-learn peer")
        prepared = subprocess.run(
            [str(TRAIN_PYTHON), str(Path(__file__)), "--prepare", str(model_dir)],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=1200,
        )
        if prepared.returncode != 0:
            raise SystemExit(f"preparing the peers failed: {prepared.stderr[-2000:]}")
        facts = json.loads(prepared.stdout.splitlines()[-1])
        peers = measure(model_dir, work, 2 if args.quick else 5, harness.note)
        results["presets"][preset] = {"prepared": facts, "peers": peers}
    (out / f"peers-{stamp}.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    markdown = table(results)
    (out / f"peers-{stamp}.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    print(f"\nbench-results/peers-{stamp}.json", file=sys.stderr)
    return results


# -------------------------------------------------------------------------------- the table
def table(results: dict[str, Any]) -> str:
    lines = [
        "Peers, side by side on the same model file, tokenizer and texts (one text per call, "
        "one thread). Ratios are maas on tflite-runtime ÷ the peer (above 1 = the peer is "
        "smaller/faster for times and sizes, maas faster for throughput)."
    ]
    for preset, entry in results["presets"].items():
        peers = entry["peers"]
        ref = peers[REFERENCE]
        lines += [
            "",
            f"**{preset} preset**"
            + (
                ""
                if entry["prepared"]["onnx"]["converted"]
                else f" (ONNX: tf2onnx could not convert it: {entry['prepared']['onnx']['error']})"
            ),
            "",
            "| peer | cold start | import | p50 / p99 | texts per CPU-s | of its floor | "
            "peak RSS | bundle | max prob. diff / same label |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, facts in peers.items():
            floor = f"{facts['of_floor']:.2f}×" if "of_floor" in facts else "-"
            lines.append(
                f"| {name} | {facts['cold_s'] * 1000:,.0f} ms | {facts['import_s'] * 1000:,.0f} ms "
                f"| {facts['p50_ms']:.3f} / {facts['p99_ms']:.3f} ms "
                f"| {facts['texts_per_cpu_s']:,.0f} | {floor} | {facts['peak_rss_mib']:.0f} MiB "
                f"| {facts['footprint']['mb']:.0f} MB "
                f"| {facts['agreement']['max_abs_diff']:.1e} / "
                f"{facts['agreement']['same_label'] * 100:.1f} % |"
            )
        lines += [
            "",
            "| maas on tflite-runtime ÷ peer | cold | p50 | texts per CPU-s | RSS | bundle |",
        ]
        lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
        for name, facts in peers.items():
            if name == REFERENCE:
                continue
            lines.append(
                f"| {name} | {ref['cold_s'] / facts['cold_s']:.2f} "
                f"| {ref['p50_ms'] / facts['p50_ms']:.2f} "
                f"| {ref['texts_per_cpu_s'] / facts['texts_per_cpu_s']:.2f} "
                f"| {ref['peak_rss_mib'] / facts['peak_rss_mib']:.2f} "
                f"| {ref['footprint']['mb'] / facts['footprint']['mb']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and texts")
    parser.add_argument("--presets", type=lambda v: v.split(","), default=["default", "seed"])
    parser.add_argument("--out", type=Path, default=REPO / "bench-results")
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        print(json.dumps(prepare(args.prepare)))
        return 0
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
