"""The serving side of the store: classifiers loaded once per process, aliases followed.

Both Lambda functions hold one `ModelService` for the life of their process. It

- resolves a request's model reference to a version: `name:3` as is; `name@alias` and a bare
  `name` (its configured alias when that exists, else its latest version: `ModelStore.resolve`)
  through the store, remembered for the alias TTL so a promote takes effect without a redeploy
  and without a store round trip per request;
- keeps the classifiers it loaded, keyed by (name, version), least recently used out first;
- never remembers a failure: an unreachable store raises `StoreError` (HTTP 503, a retried
  queue message) and the next call tries again. When a re-resolution fails but an earlier
  answer exists, the earlier answer is served (a store blip must not take a warm function down).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from maas.core.classifier import Classifier, Prediction
from maas.core.limits import EXPLAIN_MAX_INVOKES
from maas.errors import (
    ErrorCode,
    InvalidInput,
    MaasError,
    ModelNotFound,
    ModelRejected,
    StoreError,
)
from maas.service.settings import DEFAULT_ALIAS_TTL, DEFAULT_MAX_MODELS, ServiceSettings
from maas.store import signing
from maas.store.refs import DEFAULT_ALIAS, ModelRef
from maas.store.registry import ModelStore
from maas.store.routing import Route

# After a failed re-resolution, how long the previous answer is served before trying again.
STALE_RETRY_SECONDS = 5.0

OnLoad = Callable[[Classifier, float], None]


@dataclass
class _Resolution:
    route: Route
    alias: str | None
    expires: float

    @property
    def version(self) -> str:
        return self.route.version


@dataclass(frozen=True)
class ShadowReport:
    """How a shadow version's answers compared with the answers that were returned."""

    name: str
    version: str  # the shadow's
    live_version: str
    texts: int
    agreed: int

    @property
    def agreement(self) -> float:
        return self.agreed / self.texts if self.texts else 1.0


class ModelService:
    def __init__(
        self,
        store: ModelStore | str | Path,
        *,
        cache_dir: str | Path,
        default_model: str | None = None,
        alias: str = DEFAULT_ALIAS,
        alias_ttl: float = DEFAULT_ALIAS_TTL,
        max_models: int = DEFAULT_MAX_MODELS,
        signing_key: str | None = None,
        on_load: OnLoad | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`store`: an open store, or its URI (opened on first use with `signing_key`: a
        key spec of maas.store.signing; None or "none" reads versions unverified)."""
        self._store: ModelStore | None = store if isinstance(store, ModelStore) else None
        self._store_uri = None if isinstance(store, ModelStore) else store
        self.signing_key = signing_key
        self.default_model = default_model
        self.alias = alias
        self.cache_dir = Path(cache_dir)
        self.alias_ttl = alias_ttl
        self.max_models = max_models
        self.on_load = on_load
        self._clock = clock
        self._resolved: dict[tuple[str, str | None], _Resolution] = {}
        self._classifiers: OrderedDict[tuple[str, str], Classifier] = OrderedDict()
        self._rejected: dict[tuple[str, str], tuple[ModelRejected, float]] = {}
        self._lock = threading.RLock()

    @classmethod
    def from_settings(
        cls, settings: ServiceSettings, on_load: OnLoad | None = None
    ) -> ModelService:
        return cls(
            settings.store,
            cache_dir=settings.cache_dir,
            default_model=settings.default_model,
            alias=settings.alias,
            alias_ttl=settings.alias_ttl,
            max_models=settings.max_models,
            signing_key=settings.signing_key,
            on_load=on_load,
        )

    @property
    def store(self) -> ModelStore:
        # Opened on first use, so a misconfigured MAAS_STORE is a 503 with a message rather
        # than a function that cannot start.
        if self._store is None:
            signer = signing.open_signer(self.signing_key) if self.signing_key else None
            self._store = ModelStore.open(self._store_uri, signer)
        return self._store

    # -- the public calls ---------------------------------------------------------------
    def classifier(self, ref: str | None = None) -> Classifier:
        """The classifier for `name`, `name@alias` or `name:version` (default: the default
        model), loading it on first use: fetched (signature and files verified), opened (its
        model files probed in a child process first) and its golden examples reproduced.
        Raises ModelNotFound, InvalidModelRef, StoreError, and ModelRejected for a version
        that fails a check (remembered for a few seconds, so a bad version is not fetched
        and probed again on every request)."""
        with self._lock:
            name, version = self.resolve(ref)
            key = (name, version)
            if key in self._classifiers:
                self._classifiers.move_to_end(key)
                return self._classifiers[key]
            rejected = self._rejected.get(key)
            if rejected and self._clock() < rejected[1]:
                raise rejected[0]
            started = time.perf_counter()
            try:
                local = self.store.fetch(ModelRef(name, version=version), self.cache_dir)
                classifier = local.open()
                classifier.verify_golden()
            except ModelRejected as exc:
                self._rejected[key] = (exc, self._clock() + STALE_RETRY_SECONDS)
                raise
            self._rejected.pop(key, None)
            self._classifiers[key] = classifier
            while len(self._classifiers) > self.max_models:
                self._classifiers.popitem(last=False)
        if self.on_load:
            self.on_load(classifier, time.perf_counter() - started)
        return classifier

    def predict(
        self,
        texts: Sequence[str],
        ref: str | None = None,
        *,
        explain: bool = False,
        max_invokes: int = EXPLAIN_MAX_INVOKES,
        routing_key: str | None = None,
    ) -> tuple[Classifier, list[Prediction]]:
        """Predictions from the version `ref` sends this routing key to (an alias with a
        canary sends a share of the keys to the canary; without a key, its own version)."""
        classifier = self.classifier(self.routed(ref, routing_key))
        return classifier, classifier.predict(texts, explain=explain, max_invokes=max_invokes)

    def routed(self, ref: str | None, routing_key: str | None) -> str:
        """The `name:version` reference that answers `ref` for this routing key."""
        name, resolution = self._resolution(ref)
        scope = f"{name}@{resolution.alias}"
        return f"{name}:{resolution.route.choose(routing_key, scope)}"

    def shadow(
        self,
        texts: Sequence[str],
        ref: str | None,
        routing_key: str | None,
        live: Classifier,
        predictions: Sequence[Prediction],
    ) -> ShadowReport | None:
        """Run the alias's shadow version on the same texts when this routing key is in its
        sample, and compare its labels with the ones returned. Never raises: a shadow that
        fails must not fail the request (the caller logs None as nothing to report)."""
        name, resolution = self._resolution(ref)
        version = resolution.route.shadowed(routing_key, f"{name}@{resolution.alias}")
        if version is None or version == live.version:
            return None
        shadow = self.classifier(f"{name}:{version}").predict(texts)
        agreed = sum(s.label == p.label for s, p in zip(shadow, predictions, strict=True))
        return ShadowReport(name, version, live.version, len(texts), agreed)

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
        """The (name, version) a reference means: an alias's own version (not its canary)."""
        name, resolution = self._resolution(ref)
        return name, resolution.version

    def _resolution(self, ref: str | None) -> tuple[str, _Resolution]:
        parsed = self._parse(ref)
        if parsed.version:
            return parsed.name, _Resolution(Route(parsed.version), None, float("inf"))
        key = (parsed.name, parsed.alias)
        now = self._clock()
        known = self._resolved.get(key)
        if known and now < known.expires:
            return parsed.name, known
        try:
            _, route, alias = self.store.resolve_route(parsed, default_alias=self.alias)
        except StoreError:
            if known is None:
                raise
            known.expires = now + min(self.alias_ttl, STALE_RETRY_SECONDS)
            return parsed.name, known
        except ModelNotFound:
            self._resolved.pop(key, None)
            raise
        resolution = _Resolution(route, alias, now + self.alias_ttl)
        self._resolved[key] = resolution
        return parsed.name, resolution

    def _parse(self, ref: str | None) -> ModelRef:
        ref = ref or self.default_model
        if not ref:
            raise InvalidInput(
                "no model named and no default model configured (MAAS_MODEL_NAME)",
                code=ErrorCode.MISSING_MODEL,
            )
        return ModelRef.parse(ref)
