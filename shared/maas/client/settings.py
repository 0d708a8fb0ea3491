"""The client side's configuration (the CLI, batch submission, the training launcher): the only
module on a user's machine that reads `MAAS_*` variables. An explicit argument (a command-line
option) always beats the environment.

| variable | default | what |
| --- | --- | --- |
| `MAAS_STORE` | `.maas/store` | the model store of every command that takes `--store` |
| `MAAS_HOME` | `.maas` | where `maas batch submit` records its batches (`batches/`) |
| `MAAS_RESULTS` | `.maas/results` | the results sink the queue function writes (batch commands) |
| `MAAS_CACHE_DIR` | `$XDG_CACHE_HOME/maas` | versions downloaded by `predict` and `evaluate` |
| `MAAS_TRAIN_PYTHON` | `.venv-train/bin/python` beside this one | the training environment |
| `MAAS_PROGRESS` | on a terminal | `1` forces progress bars, `0` hides them |
| `MAAS_DEBUG` | off | `1`: an unexpected error prints its traceback |
| `MAAS_ACTOR` | user@host | who an alias change is recorded as made by (`maas alias history`) |
| `MAAS_SIGNING_KEY` | `$XDG_CONFIG_HOME/maas/signing.key` | signs and verifies versions |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from maas.service.settings import DEFAULT_RESULTS, default_cache_dir
from maas.store.backends import DEFAULT_STORE
from maas.store.signing import default_key_path

DEFAULT_HOME = ".maas"


@dataclass(frozen=True)
class ClientSettings:
    store: str = DEFAULT_STORE
    home: Path = Path(DEFAULT_HOME)
    results: str = DEFAULT_RESULTS
    cache_dir: Path = field(default_factory=lambda: default_cache_dir(os.environ))
    train_python: str | None = None
    training_image: str | None = None  # `maas train --on sagemaker --image`'s default
    sagemaker_poll_s: float = 10.0
    progress: bool | None = None  # None: when stderr is a terminal
    signing_key: str = field(default_factory=lambda: str(default_key_path(os.environ)))
    debug: bool = False
    actor: str | None = None  # None: user@host

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ClientSettings:
        env = os.environ if env is None else env
        progress = env.get("MAAS_PROGRESS")
        return cls(
            store=env.get("MAAS_STORE") or DEFAULT_STORE,
            home=Path(env.get("MAAS_HOME") or DEFAULT_HOME),
            results=env.get("MAAS_RESULTS") or DEFAULT_RESULTS,
            cache_dir=Path(env.get("MAAS_CACHE_DIR") or default_cache_dir(env)),
            train_python=env.get("MAAS_TRAIN_PYTHON") or None,
            training_image=env.get("MAAS_TRAINING_IMAGE") or None,
            sagemaker_poll_s=float(env.get("MAAS_SAGEMAKER_POLL_S") or 10.0),
            progress=None if progress in (None, "") else progress not in ("0", "false", "no"),
            signing_key=env.get("MAAS_SIGNING_KEY") or str(default_key_path(env)),
            debug=env.get("MAAS_DEBUG", "") not in ("", "0", "false", "no"),
            actor=env.get("MAAS_ACTOR") or None,
        )

    @property
    def batches(self) -> Path:
        return self.home / "batches"
