"""Accuracy of every preset against the TF-IDF + logistic-regression baseline, on the bundled
real datasets and several seeds, with 95 % Wilson intervals: the table the README quotes.

    .venv-train/bin/python bench/accuracy.py [--presets default,default@C=1,cnn] [--seeds 1,2,3]
                                             [--datasets reviews,packages,man-pages] [--out DIR]

Each (dataset, seed) is split as the training job splits it (stratified 80/10/10 by the
seed); each preset trains on the train split with the job's own code (early stopping on the
validation split) and is scored on the test split as a float Keras model (the exported,
quantized model is within the quality gate of it: `maas train` checks that on every run). The
baseline sees the same train split. `PRESET@C=X` trains a preset with a linear path with its
C fixed at X instead of chosen on validation (`models.LINEAR_C_GRID`): the ablation beside it.
Writes DIR/accuracy-<time>.json and prints the table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "shared"))

DATASETS = {
    "reviews": REPO / "data" / "reviews-zh" / "reviews.csv",
    "packages": REPO / "data" / "debian-packages" / "packages.csv",
    "man-pages": REPO / "data" / "man-pages" / "man-pages.csv",
}


def run_one(dataset: str, preset_name: str, seed: int) -> dict[str, Any]:
    from maas.client.data import FileOptions
    from maas.core.metrics import wilson_interval
    from maas.training import baseline, job, models, splits
    from maas.training.presets import PRESETS

    name, _, fixed = preset_name.partition("@C=")
    grid = models.LINEAR_C_GRID
    models.LINEAR_C_GRID = (float(fixed),) if fixed else grid
    data = splits.load(DATASETS[dataset], "text", "label", seed, FileOptions())
    try:
        fitted = job.fit(PRESETS[name], data, seed)  # what `maas train` trains
    finally:
        models.LINEAR_C_GRID = grid
    trained, tokenizer = fitted.trained, fitted.tokenizer
    predicted = models.probabilities(fitted.model, fitted.encoded["test"]).argmax(axis=1)
    y = data.test.y
    correct = int((predicted == y).sum())
    base = baseline.predict(tokenizer.spec, data.train.texts, data.train.y, data.test.texts, seed)
    base_correct = int((base == y).sum())
    n = len(y)
    return {
        "dataset": dataset,
        "preset": preset_name,
        "seed": seed,
        "n": n,
        "accuracy": correct / n,
        "interval": wilson_interval(correct, n),
        "baseline": base_correct / n,
        "baseline_interval": wilson_interval(base_correct, n),
        "epochs": trained.epochs_run,
        "seconds": round(trained.seconds, 1),
        "linear_c": trained.linear_c,
        "network_kept": trained.network_kept,
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| dataset | preset | accuracy, mean of seeds (95 % interval of each) | baseline "
        "| margin |",
        "| --- | --- | --- | --- | ---: |",
    ]
    keys = sorted({(r["dataset"], r["preset"]) for r in rows}, key=lambda k: (k[0], k[1]))
    for dataset, preset in keys:
        runs = [r for r in rows if (r["dataset"], r["preset"]) == (dataset, preset)]
        mean = statistics.mean(r["accuracy"] for r in runs)
        base = statistics.mean(r["baseline"] for r in runs)
        each = ", ".join(
            f"{r['accuracy']:.3f} [{r['interval'][0]:.3f}, {r['interval'][1]:.3f}]" for r in runs
        )
        lines.append(
            f"| {dataset} (n={runs[0]['n']}) | {preset} | {mean:.3f}: {each} | {base:.3f} "
            f"| {100 * (mean - base):+.1f} pt |"
        )
    lines.append("")
    for preset in sorted({r["preset"] for r in rows}):
        margins = [
            statistics.mean(
                r["accuracy"] - r["baseline"]
                for r in rows
                if r["preset"] == preset and r["dataset"] == dataset
            )
            for dataset in sorted({r["dataset"] for r in rows if r["preset"] == preset})
        ]
        lines.append(
            f"{preset}: average margin over {len(margins)} datasets "
            f"{100 * statistics.mean(margins):+.2f} pt"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", default="default,seed,cnn,bilstm,transformer")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--out", type=Path, default=REPO / "bench-results")
    args = parser.parse_args()
    rows = []
    for dataset in args.datasets.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            for preset in args.presets.split(","):
                started = time.perf_counter()
                row = run_one(dataset, preset, seed)
                rows.append(row)
                print(
                    f"{dataset} seed {seed} {preset}: {row['accuracy']:.3f} "
                    f"(baseline {row['baseline']:.3f}) in {time.perf_counter() - started:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out = args.out / f"accuracy-{stamp}.json"
    out.write_text(json.dumps({"runs": rows, "command": sys.argv}, indent=2), encoding="utf-8")
    print(table(rows))
    print(f"\n{out}")


if __name__ == "__main__":
    main()
