"""The CLI contract, through the installed `maas` entry point, as a script would use it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PACKAGES, sample_rows, write_csv

from maas.core import manifest as artifact

MAAS = str(Path(sys.executable).with_name("maas"))


def maas(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MAAS, *args], capture_output=True, text=True, input=stdin, timeout=900)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("maas: error: ")
    return lines[0]


@pytest.fixture
def store(tmp_path: Path) -> str:
    return str(tmp_path / "store")


@pytest.fixture
def published(trained_model: Path, store: str) -> str:
    result = maas(
        "publish",
        str(trained_model),
        "--store",
        store,
        "--name",
        "reviews",
        "--alias",
        "production",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1\n"
    return store


def test_train_publish_predict_evaluate_multiclass_jsonl(tmp_path: Path) -> None:
    rows = sample_rows(PACKAGES, 40)
    data = tmp_path / "packages.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    out = tmp_path / "artifact"
    trained = maas("train", str(data), "--out", str(out), "--epochs", "3", "--seed", "3")
    assert trained.returncode == 0, trained.stderr
    assert "verified with tflite-runtime 2.14.0" in trained.stderr
    store = str(tmp_path / "store")
    assert maas("publish", str(out), "--store", store, "--name", "packages").stdout == "1\n"

    predicted = maas(
        "predict",
        "--store",
        store,
        "--model",
        "packages:1",
        "a puzzle game for kids",
        "audio mixer",
    )
    assert predicted.returncode == 0, predicted.stderr
    lines = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert len(lines) == 2
    assert set(lines[0]["scores"]) == {"games", "graphics", "science", "sound"}
    assert abs(sum(lines[0]["scores"].values()) - 1) < 1e-3

    evaluated = maas("evaluate", "--store", store, "--model", "packages", str(data), "--json")
    report = json.loads(evaluated.stdout)
    assert {"accuracy", "macro_f1", "n", "per_class"} <= set(report)
    assert report["n"] == len(rows)


def test_publish_models_promote(trained_model: Path, published: str) -> None:
    second = maas("publish", str(trained_model), "--store", published, "--name", "reviews")
    assert second.stdout == "2\n"
    listing = json.loads(maas("models", "--store", published, "--json").stdout)
    (model,) = listing["models"]
    assert [v["version"] for v in model["versions"]] == ["1", "2"]
    assert model["aliases"] == {"production": "1"}

    assert (
        maas(
            "promote",
            "--store",
            published,
            "--name",
            "reviews",
            "--version",
            "2",
            "--alias",
            "production",
        ).returncode
        == 0
    )
    human = maas("models", "--store", published, "--name", "reviews").stdout
    assert "@production" in human.splitlines()[-1]


def test_predict_prints_json_lines_through_the_serving_path(published: str) -> None:
    texts = ["质量很好，非常满意，推荐购买", "太差了，完全不能用，退货"]
    result = maas("predict", "--store", published, "--model", "reviews@production", *texts)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["label"] for line in lines] == ["positive", "negative"]
    assert lines[0]["model"] == {"name": "reviews", "version": "1"}
    from_stdin = maas(
        "predict", "--store", published, "--model", "reviews", "-", stdin="\n".join(texts) + "\n"
    )
    assert [json.loads(line)["label"] for line in from_stdin.stdout.splitlines()] == [
        "positive",
        "negative",
    ]


def test_evaluate_json(published: str, reviews_sample: Path) -> None:
    result = maas(
        "evaluate", "--store", published, "--model", "reviews", str(reviews_sample), "--json"
    )
    report = json.loads(result.stdout)
    assert report["n"] == 600
    assert report["accuracy"] > 0.7  # it saw these texts in training; a broken path gives ~0.5
    assert set(report["per_class"]) == {"negative", "positive"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "--model", "nope", "x"], "no model named 'nope'"),
        (["predict", "--model", "reviews:9", "x"], "no version 9"),
        (["predict", "--model", "bad/name", "x"], "invalid model name"),
        (["predict", "--model", "reviews"], "no texts"),
        (["evaluate", "--model", "reviews", "missing.csv"], "no such file"),
        (
            ["promote", "--name", "reviews", "--version", "5", "--alias", "production"],
            "no version 5",
        ),
        (["models", "--name", "nope"], "no model named 'nope'"),
    ],
)
def test_mistakes_exit_non_zero_with_one_line(
    published: str, args: list[str], message: str
) -> None:
    line = one_line_error(maas(*args, "--store", published))
    assert message in line


def test_publish_refuses_a_failed_quality_gate_unless_overridden(
    trained_model: Path, tmp_path: Path, store: str
) -> None:
    degraded = shutil.copytree(trained_model, tmp_path / "degraded")
    manifest = artifact.read_manifest(degraded)
    assert manifest.quality_gate is not None
    gate = manifest.quality_gate.model_copy(update={"passed": False, "accuracy_drop": 0.05})
    artifact.write_manifest(degraded, manifest.updated(quality_gate=gate))
    line = one_line_error(maas("publish", str(degraded), "--store", store, "--name", "m"))
    assert "5.00 accuracy points below float" in line and "--allow-quality-drop" in line
    forced = maas("publish", str(degraded), "--store", store, "--name", "m", "--allow-quality-drop")
    assert forced.returncode == 0 and forced.stdout == "1\n"


def test_publish_refuses_golden_examples_the_runtime_does_not_reproduce(
    trained_model: Path, tmp_path: Path, store: str
) -> None:
    wrong = shutil.copytree(trained_model, tmp_path / "wrong")
    manifest = artifact.read_manifest(wrong)
    first, *rest = manifest.golden.examples
    inverted = first.model_copy(update={"probabilities": [1 - p for p in first.probabilities]})
    golden = manifest.golden.model_copy(update={"examples": [inverted, *rest]})
    artifact.write_manifest(wrong, manifest.updated(golden=golden))
    assert "does not reproduce the golden examples" in one_line_error(
        maas("publish", str(wrong), "--store", store, "--name", "m")
    )


def test_publish_refuses_a_tampered_artifact(
    trained_model: Path, tmp_path: Path, store: str
) -> None:
    tampered = shutil.copytree(trained_model, tmp_path / "tampered")
    (tampered / "tokenizer.json").write_text("{}")
    assert "tokenizer.json does not match its manifest" in one_line_error(
        maas("publish", str(tampered), "--store", store, "--name", "m")
    )
    assert "not a model artifact" in one_line_error(
        maas("publish", str(tmp_path), "--store", store, "--name", "m")
    )


def test_train_reports_bad_data_in_one_line(tmp_path: Path) -> None:
    data = write_csv(
        tmp_path / "one-label.csv", [{"text": f"t {i}", "label": "only"} for i in range(30)]
    )
    result = maas("train", str(data), "--out", str(tmp_path / "out"))
    assert result.returncode != 0
    assert "label" in result.stderr.strip().splitlines()[-1]
