"""The benchmarks keep running: `bench/throughput.py --quick` end to end on this session's
model (submit -> moto SQS -> the queue function -> S3 results), with its exact accounting.
A smoke run: its figures are not asserted (the machine is shared)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.integration


def test_throughput_quick_run_accounts_for_every_text(trained_model: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "throughput.py"),
            "--quick",
            "--model-dir",
            str(trained_model),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (report,) = tmp_path.glob("throughput-*.json")
    result = json.loads(report.read_text(encoding="utf-8"))
    assert result["texts"] == 2000 and result["repeat"] == 1
    assert result["accounting"] == {"done": 2000, "failed": 0, "dead": 0}
    assert set(result["phases"]) == {"floor", "classifier", "submit", "pipeline", "results"}
    assert "pipeline / floor" in done.stdout


def test_the_harness_finds_what_it_hashes_and_runs() -> None:
    """`make bench` keys its cached models on the training code: every path it hashes exists
    (a moved module would otherwise stop the harness before it measures anything)."""
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import harness
    finally:
        sys.path.remove(str(REPO / "bench"))
    for entry in harness.TRAINING_CODE:
        assert (REPO / entry).exists(), entry
    keys = {preset: harness.model_key(preset) for preset in harness.PRESETS}
    assert len(set(keys.values())) == len(keys), "each preset has its own cache key"
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "harness.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "--quick" in done.stdout
