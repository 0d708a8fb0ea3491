"""The serving side of the store: classifiers loaded once per process, aliases followed.

Both Lambda functions hold one `ModelService` for the life of their process. It

- resolves a request's model reference to a version: `name:3` as is; `name@alias` and a bare
  `name` (= `name@<MAAS_MODEL_ALIAS>` when that alias exists, else the latest version) through
  the store, remembered for MAAS_ALIAS_TTL_SECONDS so a promote takes effect without a redeploy
  and without a store round trip per request;
- keeps the classifiers it loaded, keyed by (name, version), least recently used out first;
- never remembers a failure: an unreachable store raises `StoreError` (HTTP 503, a retried
  queue message) and the next call tries again. When a re-resolution fails but an earlier
  answer exists, the earlier answer is served (a store blip must not take a warm function down).
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from maas.classifier import Classifier, Prediction
from maas.errors import InvalidInput, MaasError, ModelNotFound, StoreError
from maas.store import DEFAULT_ALIAS, ModelRef, ModelStore

DEFAULT_ALIAS_TTL = 60.0
DEFAULT_MAX_MODELS = 8
# After a failed re-resolution, how long the previous answer is served before trying again.
STALE_RETRY_SECONDS = 5.0

OnLoad = Callable[[Classifier, float], None]


@dataclass
class _Resolution:
    version: str
    expires: float


class ModelService:
    def __init__(
        self,
        store: ModelStore | str | Path | None = None,
        *,
        default_model: str | None = None,
        alias: str = DEFAULT_ALIAS,
        cache_dir: str | Path | None = None,
        alias_ttl: float = DEFAULT_ALIAS_TTL,
        max_models: int = DEFAULT_MAX_MODELS,
        on_load: OnLoad | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store: ModelStore | None = store if isinstance(store, ModelStore) else None
        self._store_uri = None if isinstance(store, ModelStore) else store
        self.default_model = default_model
        self.alias = alias
        self.cache_dir = cache_dir
        self.alias_ttl = alias_ttl
        self.max_models = max_models
        self.on_load = on_load
        self._clock = clock
        self._resolved: dict[tuple[str, str | None], _Resolution] = {}
        self._classifiers: OrderedDict[tuple[str, str], Classifier] = OrderedDict()
        self._lock = threading.RLock()

    @classmethod
    def from_env(cls, on_load: OnLoad | None = None) -> ModelService:
        """MAAS_STORE, MAAS_MODEL_NAME, MAAS_MODEL_ALIAS (production), MAAS_CACHE_DIR,
        MAAS_ALIAS_TTL_SECONDS (60), MAAS_MAX_MODELS (8)."""
        env = os.environ
        return cls(
            env.get("MAAS_STORE") or None,
            default_model=env.get("MAAS_MODEL_NAME") or None,
            alias=env.get("MAAS_MODEL_ALIAS") or DEFAULT_ALIAS,
            cache_dir=env.get("MAAS_CACHE_DIR") or None,
            alias_ttl=float(env.get("MAAS_ALIAS_TTL_SECONDS") or DEFAULT_ALIAS_TTL),
            max_models=int(env.get("MAAS_MAX_MODELS") or DEFAULT_MAX_MODELS),
            on_load=on_load,
        )

    @property
    def store(self) -> ModelStore:
        # Opened on first use, so a misconfigured MAAS_STORE is a 503 with a message rather
        # than a function that cannot start.
        if self._store is None:
            self._store = ModelStore.open(self._store_uri)
        return self._store

    # -- the public calls ---------------------------------------------------------------
    def classifier(self, ref: str | None = None) -> Classifier:
        """The classifier for `name`, `name@alias` or `name:version` (default: the default
        model), loading it on first use. Raises ModelNotFound, InvalidModelRef, StoreError."""
        with self._lock:
            name, version = self.resolve(ref)
            key = (name, version)
            if key in self._classifiers:
                self._classifiers.move_to_end(key)
                return self._classifiers[key]
            started = time.perf_counter()
            local = self.store.fetch(ModelRef(name, version=version), self.cache_dir)
            classifier = Classifier(local)
            self._classifiers[key] = classifier
            while len(self._classifiers) > self.max_models:
                self._classifiers.popitem(last=False)
        if self.on_load:
            self.on_load(classifier, time.perf_counter() - started)
        return classifier

    def predict(
        self, texts: Sequence[str], ref: str | None = None
    ) -> tuple[Classifier, list[Prediction]]:
        classifier = self.classifier(ref)
        return classifier, classifier.predict(texts)

    def loaded(self, ref: str | None = None) -> Classifier | None:
        """The classifier a reference currently points at if it is loaded; no store I/O."""
        try:
            parsed = self._parse(ref)
        except MaasError:  # no default model, or a malformed reference: nothing is loaded
            return None
        version = parsed.version
        if version is None:
            resolution = self._resolved.get((parsed.name, parsed.alias))
            version = resolution.version if resolution else None
        return self._classifiers.get((parsed.name, version)) if version else None

    # -- resolution -----------------------------------------------------------------------
    def resolve(self, ref: str | None = None) -> tuple[str, str]:
        parsed = self._parse(ref)
        if parsed.version:
            return parsed.name, parsed.version
        key = (parsed.name, parsed.alias)
        now = self._clock()
        known = self._resolved.get(key)
        if known and now < known.expires:
            return parsed.name, known.version
        try:
            version = self._resolve_in_store(parsed)
        except StoreError:
            if known is None:
                raise
            known.expires = now + min(self.alias_ttl, STALE_RETRY_SECONDS)
            return parsed.name, known.version
        except ModelNotFound:
            self._resolved.pop(key, None)
            raise
        self._resolved[key] = _Resolution(version, now + self.alias_ttl)
        return parsed.name, version

    def _parse(self, ref: str | None) -> ModelRef:
        ref = ref or self.default_model
        if not ref:
            raise InvalidInput(
                "no model named and no default model configured (MAAS_MODEL_NAME)",
                code="missing_model",
            )
        return ModelRef.parse(ref)

    def _resolve_in_store(self, ref: ModelRef) -> str:
        if ref.alias:
            return self.store.resolve(ref)[1]
        try:  # a bare name: the configured alias when it exists, else the latest version
            return self.store.resolve(ModelRef(ref.name, alias=self.alias))[1]
        except ModelNotFound:
            versions = self.store.versions(ref.name)
            if not versions:
                raise ModelNotFound(f"no model named {ref.name!r}") from None
            return versions[-1]
