"""Safe rollouts: alias history and rollback, canary and shadow splits, guarded promote and
version lifecycle, on the local store and on S3 (moto server on 127.0.0.1)."""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import open_store, write_csv
from test_http import request

from maas.cli import main
from maas.core import manifest as artifact
from maas.errors import InvalidInput, ModelNotFound
from maas.local.lambda_runtime import lambda_context, load_function
from maas.store import ModelStore
from maas.store.routing import Route, Split

MAAS = str(Path(sys.executable).with_name("maas"))


@pytest.fixture(params=["local", "s3"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "store")
    bucket: str = request.getfixturevalue("s3_bucket")
    return f"s3://{bucket}/models"


@pytest.fixture
def three_versions(store_uri: str, trained_model: Path) -> ModelStore:
    store = open_store(store_uri)
    for _ in range(3):
        store.publish(trained_model, "reviews")
    return store


def test_every_alias_change_is_recorded(three_versions: ModelStore) -> None:
    store = three_versions
    store.actor = "ci-bot"
    store.promote("reviews", "1", "production", reason="first")
    store.promote("reviews", "2", "production")
    assert store.rollback("reviews", "production", reason="v2 misbehaves") == ("2", "1")
    history = store.history("reviews", "production")
    assert [(c.seq, c.action, c.before, c.after) for c in history] == [
        (1, "promote", None, "1"),
        (2, "promote", "1", "2"),
        (3, "rollback", "2", "1"),
    ]
    assert history[0].reason == "first" and history[2].reason == "v2 misbehaves"
    assert {c.by for c in history} == {"ci-bot"}
    assert store.alias("reviews", "production") == "1"


def test_rollback_walks_back_step_by_step_and_refuses_past_the_start(
    three_versions: ModelStore,
) -> None:
    store = three_versions
    for version in ("1", "2", "3"):
        store.promote("reviews", version, "production")
    assert store.rollback("reviews", "production") == ("3", "2")
    assert store.rollback("reviews", "production") == ("2", "1")  # an undo, not a ping-pong
    with pytest.raises(ModelNotFound, match="no earlier version"):
        store.rollback("reviews", "production")
    assert store.rollback("reviews", "production", to="3") == ("1", "3")
    assert store.rollback("reviews", "production") == ("3", "1")
    with pytest.raises(InvalidInput, match="already points at 1"):
        store.rollback("reviews", "production", to="1")


def test_deletion_is_recorded_and_a_new_alias_continues_the_numbering(
    three_versions: ModelStore,
) -> None:
    store = three_versions
    store.promote("reviews", "1", "staging")
    store.delete_alias("reviews", "staging", reason="retired")
    store.promote("reviews", "2", "staging")
    history = store.history("reviews", "staging")
    assert [(c.seq, c.action, c.before, c.after) for c in history] == [
        (1, "promote", None, "1"),
        (2, "delete", "1", None),
        (3, "promote", None, "2"),
    ]
    with pytest.raises(ModelNotFound):
        store.rollback("reviews", "staging")  # nothing before the re-creation


def test_concurrent_promoters_lose_no_change(store_uri: str, trained_model: Path) -> None:
    store = open_store(store_uri)
    store.publish(trained_model, "reviews")
    store.publish(trained_model, "reviews")
    errors: list[BaseException] = []

    def promote(version: str) -> None:
        try:
            for _ in range(5):
                open_store(store_uri).promote("reviews", version, "production")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=promote, args=(v,)) for v in ("1", "2", "1", "2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    history = store.history("reviews", "production")
    assert [c.seq for c in history] == list(range(1, 21))  # every one of the 20, once
    for earlier, later in itertools.pairwise(history):
        assert later.before == earlier.after  # a chain: nobody's update was lost unseen
    assert history[-1].after == store.alias("reviews", "production")


def test_publish_with_an_alias_is_recorded_as_such(store_uri: str, trained_model: Path) -> None:
    store = open_store(store_uri)
    store.publish(trained_model, "reviews", alias="production")
    (change,) = store.history("reviews", "production")
    assert (change.action, change.before, change.after) == ("publish", None, "1")


def test_history_and_rollback_from_the_cli(tmp_path: Path, trained_model: Path) -> None:
    store = tmp_path / "store"
    opened = open_store(store)
    opened.publish(trained_model, "reviews", alias="production")
    opened.publish(trained_model, "reviews")
    env = {**os.environ, "MAAS_STORE": str(store), "MAAS_ACTOR": "alice"}

    def maas(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([MAAS, *args], capture_output=True, text=True, env=env, timeout=60)

    done = maas(
        "promote",
        "--name",
        "reviews",
        "--version",
        "2",
        "--alias",
        "production",
        "--reason",
        "better on the new data",
    )
    assert done.returncode == 0, done.stderr
    done = maas("rollback", "reviews", "--alias", "production")
    assert done.returncode == 0 and "reviews@production -> 1 (rolled back from 2)" in done.stderr
    shown = maas("alias", "history", "reviews@production")
    lines = shown.stdout.splitlines()
    assert len(lines) == 3 and "publish" in lines[0] and "rollback" in lines[2]
    assert "better on the new data" in lines[1] and all("alice" in line for line in lines[1:])
    as_json = json.loads(maas("alias", "history", "reviews@production", "--json").stdout)
    assert [c["to"] for c in as_json["changes"]] == ["1", "2", "1"]
    refused = maas("rollback", "reviews", "--alias", "production")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "no earlier version" in refused.stderr
    missing = maas("alias", "history", "reviews")
    assert missing.returncode != 0 and "NAME@ALIAS" in missing.stderr


# ------------------------------------------------------------------- canary and shadow
def test_a_split_holds_its_share_and_each_key_its_version() -> None:
    route = Route("1", canary=Split("2", 0.10))
    keys = [f"user-{i}" for i in range(10_000)]
    chosen = [route.choose(key, "reviews@production") for key in keys]
    assert abs(chosen.count("2") / len(keys) - 0.10) <= 0.02
    assert chosen == [route.choose(key, "reviews@production") for key in keys]
    other_alias = [route.choose(key, "reviews@staging") for key in keys]
    assert other_alias != chosen  # another alias draws its own keys
    assert route.choose(None, "reviews@production") == "1"
    shadow = Route("1", shadow=Split("3", 0.25))
    sampled = sum(shadow.shadowed(key, "s") == "3" for key in keys) / len(keys)
    assert abs(sampled - 0.25) <= 0.02


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("2", "VERSION=SHARE"),
        ("2=0", "above 0"),
        ("2=150%", "at most 100%"),
        ("2=x", "a share"),
        ("2=100%", "is a promote"),
    ],
)
def test_a_bad_split_is_refused_with_its_reason(spec: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Split.parse(spec, "--canary")


def cli(*args: str) -> int:
    return main(list(args))


def test_canary_shadow_rollback_end_to_end(
    store_uri: str,
    trained_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Publish v1, v2, v3; canary 10 % to v2 and shadow 20 % to v3; 10,000 requests through
    the HTTP function; rollback; the history tells all of it."""
    store = open_store(store_uri)
    store.publish(trained_model, "reviews", alias="production")
    store.publish(trained_model, "reviews")
    store.publish(trained_model, "reviews")
    monkeypatch.setenv("MAAS_STORE", store_uri)
    for name, value in {
        "MAAS_MODEL_NAME": "reviews",
        "MAAS_CACHE_DIR": str(tmp_path / "cache"),
        "MAAS_ALIAS_TTL_SECONDS": "0.5",
        "POWERTOOLS_METRICS_NAMESPACE": "maas-test",
    }.items():
        monkeypatch.setenv(name, value)
    assert (
        cli(
            "promote",
            "--name",
            "reviews",
            "--alias",
            "production",
            "--canary",
            "2=10%",
            "--shadow",
            "3=20%",
            "--reason",
            "try v2",
        )
        == 0
    )
    http = load_function("http")

    def answered_by(key: str) -> str:
        event = request(
            "POST",
            "/models/reviews/predict",
            {"text": "房间很干净，服务也很好"},
            headers={"x-maas-routing-key": key},
        )
        response = http.handler(event, lambda_context())
        assert response["statusCode"] == 200, response["body"]
        version: str = json.loads(response["body"])["model"]["version"]
        return version

    keys = [f"caller-{i}" for i in range(10_000)]
    capsys.readouterr()
    versions = [answered_by(key) for key in keys]
    emitted = capsys.readouterr().out
    assert set(versions) == {"1", "2"}
    assert abs(versions.count("2") / len(keys) - 0.10) <= 0.02
    assert [answered_by(key) for key in keys[:300]] == versions[:300]  # a key keeps its version
    agreement = [json.loads(line) for line in emitted.splitlines() if "ShadowAgreement" in line]
    assert len(agreement) > 1000 and all(doc["version"] == "3" for doc in agreement)
    assert all(doc["ShadowAgreement"] == [100.0] for doc in agreement)  # the same model
    per_version = [
        json.loads(line) for line in emitted.splitlines() if "VersionPredictions" in line
    ]
    assert {doc["version"] for doc in per_version} == {"1", "2"}
    capsys.readouterr()

    assert cli("rollback", "reviews", "--alias", "production") == 0
    assert "its canary and shadow ended" in capsys.readouterr().err
    time.sleep(0.6)  # the alias TTL: the function re-reads the alias after it
    assert {answered_by(key) for key in keys[:500]} == {"1"}
    history = store.history("reviews", "production")
    assert [(c.action, c.before, c.after) for c in history] == [
        ("publish", None, "1"),
        ("split", "1", "1"),
        ("rollback", "1", "1"),
    ]
    assert history[1].details == {
        "canary": {"version": "2", "share": 0.1},
        "shadow": {"version": "3", "share": 0.2},
    }
    assert history[2].details == {"canary": None, "shadow": None}
    assert cli("alias", "history", "reviews@production") == 0
    shown = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("{")]
    assert len(shown) == 3, shown  # metrics the function printed are JSON lines; the rest is ours


def test_a_version_an_alias_routes_to_cannot_be_deleted(three_versions: ModelStore) -> None:
    store = three_versions
    store.promote("reviews", "1", "production", canary=Split("2", 0.1))
    for version in ("1", "2"):
        with pytest.raises(InvalidInput, match="still routed to by reviews@production"):
            store.delete_version("reviews", version)
    store.delete_version("reviews", "3")
    assert store.versions("reviews") == ["1", "2"]
    assert store.prune("reviews", keep=1) == []  # both are routed to


def test_prune_keeps_the_newest_and_never_reuses_a_number(
    three_versions: ModelStore, trained_model: Path
) -> None:
    store = three_versions
    store.promote("reviews", "1", "production")
    assert store.prune("reviews", keep=1) == ["2"]  # 1 is aliased, 3 is the newest
    assert store.versions("reviews") == ["1", "3"]
    assert store.publish(trained_model, "reviews") == "4"


# ------------------------------------------------------------------------ guarded promote
def test_a_worse_model_is_refused_with_both_numbers(
    tmp_path: Path, trained_model: Path, reviews_sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_dir = tmp_path / "store"
    store = open_store(store_dir)
    store.publish(trained_model, "reviews", alias="production")
    worse = tmp_path / "worse"
    shutil.copytree(trained_model, worse)
    manifest = artifact.read_manifest(worse)
    flipped = [*reversed(manifest.labels)]  # every answer inverted: far worse
    artifact.write_manifest(worse, manifest.updated(labels=flipped))
    store.publish(worse, "reviews")
    check = tmp_path / "check.csv"
    rows = list(csv.DictReader(reviews_sample.open(encoding="utf-8")))[:200]
    write_csv(check, rows)
    promote = ["promote", "--store", str(store_dir), "--name", "reviews", "--version", "2"]
    promote += ["--alias", "production", "--check", str(check)]
    status = main(promote)
    err = capsys.readouterr().err
    assert status != 0 and "accuracy points worse than 1" in err
    assert re.search(r"\(0\.\d{4} vs 0\.\d{4}; allowed 1\)", err), err
    assert store.alias("reviews", "production") == "1"
    status = main([*promote, "--force", "--reason", "testing the guard"])
    assert status == 0
    change = store.history("reviews", "production")[-1]
    check_record = (change.details or {})["check"]
    assert check_record["passed"] is False and check_record["forced"] is True
    assert check_record["candidate"]["accuracy"] < check_record["incumbent"]["accuracy"] - 0.05


def test_a_failing_canary_shows_in_its_own_error_metric(
    tmp_path: Path,
    trained_model: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A canary whose files were damaged answers 503 to the keys routed to it (never the
    others), and VersionErrors counts each of those under its own version."""
    root = tmp_path / "store"
    store = open_store(root)
    store.publish(trained_model, "reviews", alias="production")
    store.publish(trained_model, "reviews")
    damaged = root / "reviews" / "versions" / "2" / "model.tflite"
    damaged.chmod(0o644)
    damaged.write_bytes(damaged.read_bytes()[:-100])
    store.promote("reviews", "1", "production", canary=Split("2", 0.3))
    for name, value in {
        "MAAS_STORE": str(root),
        "MAAS_MODEL_NAME": "reviews",
        "MAAS_CACHE_DIR": str(tmp_path / "cache"),
        "POWERTOOLS_METRICS_NAMESPACE": "maas-test",
    }.items():
        monkeypatch.setenv(name, value)
    http = load_function("http")
    capsys.readouterr()
    statuses = []
    for i in range(200):
        event = request(
            "POST",
            "/models/reviews/predict",
            {"text": "房间很干净"},
            headers={"x-maas-routing-key": f"user-{i}"},
        )
        statuses.append(http.handler(event, lambda_context())["statusCode"])
    emitted = capsys.readouterr().out
    assert set(statuses) == {200, 503}
    errors = [json.loads(line) for line in emitted.splitlines() if "VersionErrors" in line]
    assert {doc["version"] for doc in errors} == {"2"}
    assert sum(doc["VersionErrors"][0] for doc in errors) == statuses.count(503)
    assert 0.2 <= statuses.count(503) / 200 <= 0.4
