"""The functions' configuration: read from the environment once, at cold start, and passed down.

This is the only module on the serving side that reads `MAAS_*` variables. An explicit
argument always beats the environment (`ServiceSettings(store=...)`, or `from_env(**overrides)`).

| variable | default | what |
| --- | --- | --- |
| `MAAS_STORE` | `.maas/store` | the model store: a directory, `file://` or `s3://BUCKET/PREFIX` |
| `MAAS_MODEL_NAME` | none | the model a request or message that names none uses |
| `MAAS_MODEL_ALIAS` | `production` | the alias a bare name means (else its latest version) |
| `MAAS_ALIAS_TTL_SECONDS` | 60 | seconds an alias's answer is kept before asking again |
| `MAAS_CACHE_DIR` | `/tmp/maas-cache` on Lambda, else `$XDG_CACHE_HOME/maas` | versions |
| `MAAS_MAX_MODELS` | 8 | classifiers kept loaded in one process |
| `MAAS_MAX_TEXTS` | 64 (HTTP) / 1000 (queue) | texts per request / per message |
| `MAAS_MAX_TEXT_CHARS` | 10000 | characters per text |
| `MAAS_MAX_EXPLAINED_TEXTS` | 16 (HTTP) / 100 (queue) | texts a request / message explains |
| `MAAS_EXPLAIN_MAX_INVOKES` | 128 | model invokes one explained text may cost |
| `MAAS_RESULTS` | `.maas/results` | the queue function's results sink |
| `MAAS_SIGNING_KEY` | `$XDG_CONFIG_HOME/maas/signing.key` | the key versions are verified with |
| `MAAS_UI` | off | `true`: the HTTP function also serves the playground and Swagger UI |

Powertools reads its own variables (`POWERTOOLS_*`); the metrics namespace is read here
because the functions give it a default (`maas`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from maas.core.limits import (
    DEFAULT_LIMITS,
    EXPLAIN_MAX_INVOKES,
    MAX_EXPLAINED_TEXTS_PER_MESSAGE,
    MAX_EXPLAINED_TEXTS_PER_REQUEST,
    MAX_TEXT_CHARS,
    MAX_TEXTS_PER_MESSAGE,
    MAX_TEXTS_PER_REQUEST,
    Limits,
)
from maas.errors import ConfigurationError, MaasError
from maas.store.backends import DEFAULT_STORE
from maas.store.refs import DEFAULT_ALIAS, check_name
from maas.store.signing import default_key_path

Function = Literal["http", "queue"]

DEFAULT_ALIAS_TTL = 60.0
DEFAULT_MAX_MODELS = 8
DEFAULT_RESULTS = ".maas/results"
# Each function's own limit on texts: an HTTP request answers within API Gateway's 30 s; a
# queue message holds what `maas batch submit` packs.
DEFAULT_MAX_TEXTS: dict[Function, int] = {
    "http": MAX_TEXTS_PER_REQUEST,
    "queue": MAX_TEXTS_PER_MESSAGE,
}
DEFAULT_MAX_EXPLAINED_TEXTS: dict[Function, int] = {
    "http": MAX_EXPLAINED_TEXTS_PER_REQUEST,
    "queue": MAX_EXPLAINED_TEXTS_PER_MESSAGE,
}


def default_cache_dir(env: Mapping[str, str]) -> Path:
    # Lambda can only write to /tmp; elsewhere follow XDG.
    if env.get("AWS_LAMBDA_FUNCTION_NAME"):
        return Path("/tmp/maas-cache")
    return Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "maas"


@dataclass(frozen=True)
class ServiceSettings:
    function: Function = "http"
    store: str = DEFAULT_STORE
    default_model: str | None = None
    alias: str = DEFAULT_ALIAS
    alias_ttl: float = DEFAULT_ALIAS_TTL
    cache_dir: Path = field(default_factory=lambda: default_cache_dir(os.environ))
    max_models: int = DEFAULT_MAX_MODELS
    limits: Limits = DEFAULT_LIMITS
    results: str = DEFAULT_RESULTS
    metrics_namespace: str = "maas"
    # kms:<key>, a key file, or "none" (maas.store.signing)
    signing_key: str = field(default_factory=lambda: str(default_key_path(os.environ)))
    ui: bool = False  # the playground page and Swagger UI (maas serve; a template parameter)

    @classmethod
    def from_env(
        cls,
        function: Function = "http",
        env: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> ServiceSettings:
        env = os.environ if env is None else env
        read = _Reader(env)
        settings = cls(
            function=function,
            store=read.text("MAAS_STORE") or DEFAULT_STORE,
            default_model=read.text("MAAS_MODEL_NAME"),
            alias=read.name("MAAS_MODEL_ALIAS") or DEFAULT_ALIAS,
            alias_ttl=read.number("MAAS_ALIAS_TTL_SECONDS", float, DEFAULT_ALIAS_TTL, minimum=0),
            cache_dir=Path(read.text("MAAS_CACHE_DIR") or default_cache_dir(env)),
            max_models=read.number("MAAS_MAX_MODELS", int, DEFAULT_MAX_MODELS, minimum=1),
            limits=Limits(
                max_texts=read.number("MAAS_MAX_TEXTS", int, DEFAULT_MAX_TEXTS[function], 1),
                max_text_chars=read.number("MAAS_MAX_TEXT_CHARS", int, MAX_TEXT_CHARS, 1),
                max_explained_texts=read.number(
                    "MAAS_MAX_EXPLAINED_TEXTS", int, DEFAULT_MAX_EXPLAINED_TEXTS[function], 1
                ),
                explain_max_invokes=read.number(
                    "MAAS_EXPLAIN_MAX_INVOKES", int, EXPLAIN_MAX_INVOKES, 3
                ),
            ),
            results=read.text("MAAS_RESULTS") or DEFAULT_RESULTS,
            metrics_namespace=read.text("POWERTOOLS_METRICS_NAMESPACE") or "maas",
            signing_key=read.text("MAAS_SIGNING_KEY") or str(default_key_path(env)),
            ui=read.flag("MAAS_UI"),
        )
        return replace(settings, **overrides) if overrides else settings


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str) -> str | None:
        return self.env.get(name) or None

    def flag(self, name: str) -> bool:
        value = (self.text(name) or "false").lower()
        if value not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigurationError(f"{name}={value!r} is not true or false")
        return value in ("true", "1", "yes")

    def name(self, name: str) -> str | None:
        value = self.text(name)
        if value is not None:
            try:
                check_name(value, name)
            except MaasError as exc:
                raise ConfigurationError(exc.message) from None
        return value

    def number(self, name: str, kind: type[Any], default: Any, minimum: float) -> Any:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigurationError(f"{name}={raw!r} is not a number") from None
        if value < minimum:
            raise ConfigurationError(f"{name}={raw!r} must be at least {minimum:g}")
        return value
