"""Alias history and rollback, on the local store and on S3 (moto server on 127.0.0.1)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import open_store

from maas.errors import InvalidInput, ModelNotFound
from maas.store import ModelStore

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


def test_every_alias_change_is_recorded(
    three_versions: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = three_versions
    monkeypatch.setenv("MAAS_ACTOR", "ci-bot")
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
