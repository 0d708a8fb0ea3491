"""Configuration and limits: each limit is one constant (the template's defaults agree with
it: tests/test_template.py), each function reads its environment once into settings, and a
setting it cannot use is a clear error at cold start."""

from __future__ import annotations

from pathlib import Path

import pytest

from maas.cli import build_parser
from maas.client.settings import ClientSettings
from maas.core.limits import (
    MAX_EXPLAINED_TEXTS_PER_MESSAGE,
    MAX_TEXTS_PER_MESSAGE,
    MAX_TEXTS_PER_REQUEST,
    SQS_MAX_MESSAGE_BYTES,
    Limits,
)
from maas.errors import ConfigurationError
from maas.service.settings import ServiceSettings

REPO = Path(__file__).resolve().parent.parent


def test_batch_submit_packs_what_the_queue_function_accepts() -> None:
    submit = build_parser().parse_args(["batch", "submit", "data.csv", "--queue", "q"])
    assert submit.texts_per_message == ServiceSettings.from_env("queue", {}).limits.max_texts
    assert submit.max_text_chars == ServiceSettings.from_env("queue", {}).limits.max_text_chars
    assert submit.max_message_bytes == SQS_MAX_MESSAGE_BYTES


def test_each_function_has_its_own_default_limits() -> None:
    assert ServiceSettings.from_env("http", {}).limits == Limits(MAX_TEXTS_PER_REQUEST)
    assert ServiceSettings.from_env("queue", {}).limits == Limits(
        MAX_TEXTS_PER_MESSAGE, max_explained_texts=MAX_EXPLAINED_TEXTS_PER_MESSAGE
    )


def test_settings_come_from_the_environment_and_arguments_win(tmp_path: Path) -> None:
    env = {
        "MAAS_STORE": "s3://bucket/models",
        "MAAS_MODEL_NAME": "reviews",
        "MAAS_MODEL_ALIAS": "staging",
        "MAAS_ALIAS_TTL_SECONDS": "0",
        "MAAS_CACHE_DIR": str(tmp_path),
        "MAAS_MAX_MODELS": "2",
        "MAAS_MAX_TEXTS": "5",
        "MAAS_MAX_TEXT_CHARS": "50",
        "MAAS_RESULTS": "s3://results",
    }
    settings = ServiceSettings.from_env("queue", env, alias="canary")
    assert (settings.store, settings.default_model, settings.alias) == (
        "s3://bucket/models",
        "reviews",
        "canary",
    )
    assert (settings.alias_ttl, settings.cache_dir, settings.max_models) == (0.0, tmp_path, 2)
    assert settings.limits == Limits(5, 50, max_explained_texts=MAX_EXPLAINED_TEXTS_PER_MESSAGE)
    assert settings.results == "s3://results"
    client = ClientSettings.from_env({"MAAS_HOME": str(tmp_path), "MAAS_PROGRESS": "0"})
    assert client.batches == tmp_path / "batches" and client.progress is False


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MAAS_MAX_TEXTS", "many", "MAAS_MAX_TEXTS='many' is not a number"),
        ("MAAS_MAX_TEXTS", "0", "must be at least 1"),
        ("MAAS_MAX_TEXT_CHARS", "-5", "must be at least 1"),
        ("MAAS_ALIAS_TTL_SECONDS", "-1", "must be at least 0"),
        ("MAAS_MODEL_ALIAS", "prod\n", "invalid MAAS_MODEL_ALIAS"),
    ],
)
def test_a_setting_that_cannot_be_used_is_named(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ServiceSettings.from_env("http", {name: value})
