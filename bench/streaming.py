"""Training memory vs rows: the training job on files of 100 k to 1 M rows, read once and
trained from disk (`--stream`) beside held in memory (`--no-stream`), in one run.

    .venv-train/bin/python bench/streaming.py [--rows 100000,300000,1000000]
                                              [--modes stream,memory] [--epochs 1] [--out DIR]

The rows are real: the bundled reviews (data/reviews-zh, 6,000 rows) repeated in file order
until the file holds N rows. The repeats put copies of train rows in the test split, so the
accuracies of these runs mean nothing; what is measured is the job's peak resident memory (of
that process alone: wait4's rusage), its wall time and its rows per second, for
`python -m maas.training FILE --preset default --epochs E` as `maas train` runs it. Writes
DIR/streaming-<time>.json and .png (peak memory against rows) and prints the table.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "data" / "reviews-zh" / "reviews.csv"
TRAIN_PYTHON = REPO / ".venv-train" / "bin" / "python"
MODES = {"stream": "--stream", "memory": "--no-stream"}


def write_rows(path: Path, rows: int) -> None:
    with SOURCE.open(encoding="utf-8", newline="") as handle:
        real = [(row["text"], row["label"]) for row in csv.DictReader(handle)]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(itertools.islice(itertools.cycle(real), rows))


def train(data: Path, out: Path, mode: str, epochs: int, log: Path) -> dict[str, Any]:
    command = [str(TRAIN_PYTHON), "-m", "maas.training", str(data), "--out", str(out)]
    command += [MODES[mode], "--preset", "default", "--epochs", str(epochs)]
    command.append("--allow-quality-drop")  # the repeats make the test split meaningless
    env = dict(os.environ, PYTHONPATH=str(REPO / "shared"))
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise SystemExit(f"{mode} training failed, {log}:\n{tail}")
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return {
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
        "wall_s": round(seconds, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "training_s": manifest["training"]["seconds"],
        "splits": manifest["data"]["splits"],
    }


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.5, 4))
    for mode, style in (("memory", "o--"), ("stream", "o-")):
        points = sorted((r["rows"], r["peak_rss_mib"]) for r in results if r["mode"] == mode)
        if points:
            label = (
                "--stream (read once, trained from disk)"
                if mode == "stream"
                else ("--no-stream (held in memory)")
            )
            axis.plot(*zip(*points, strict=True), style, label=label)
    axis.set_xscale("log")
    axis.set_xlabel("rows in the training file")
    axis.set_ylabel("peak resident memory (MiB)")
    axis.set_ylim(bottom=0)
    axis.set_title("maas train, default preset: memory against rows")
    axis.grid(True, alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="100000,300000,1000000")
    parser.add_argument("--modes", default="stream,memory")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "bench-results")
    args = parser.parse_args()
    sizes = [int(n) for n in args.rows.split(",")]
    modes = args.modes.split(",")
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(sorted(unknown))}; choose from stream, memory")
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    results = []
    with tempfile.TemporaryDirectory(prefix="maas-bench-streaming-") as work:
        for rows in sizes:
            data = Path(work) / f"reviews-{rows}.csv"
            write_rows(data, rows)
            for mode in modes:
                print(f"{rows:>9,} rows, {mode}: training ...", file=sys.stderr, flush=True)
                log = args.out / f"streaming-{stamp}-{mode}-{rows}.log"
                measured = train(data, Path(work) / f"model-{mode}-{rows}", mode, args.epochs, log)
                results.append(
                    {"rows": rows, "mode": mode, "file_bytes": data.stat().st_size, **measured}
                )
            data.unlink()
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "created_at": stamp,
        "source": str(SOURCE.relative_to(REPO)),
        "epochs": args.epochs,
        "preset": "default",
        "results": results,
    }
    stem = args.out / f"streaming-{stamp}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    plot(results, stem.with_suffix(".png"))
    print("| rows | mode | file | peak RSS | wall | CPU | rows/s (wall) |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['rows']:,} | {r['mode']} | {r['file_bytes'] / 2**20:,.0f} MiB | "
            f"{r['peak_rss_mib']:,.0f} MiB | {r['wall_s']:,.0f} s | {r['cpu_s']:,.0f} s | "
            f"{r['rows'] / r['wall_s']:,.0f} |"
        )
    print(f"wrote {stem}.json and {stem}.png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
