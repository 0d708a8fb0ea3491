"""What both functions set up once per cold start: settings, Powertools' Logger, Metrics and
Tracer, the model service, the warm-up of the default model, and the decorators every handler
wears. Written once, so the HTTP and the queue function cannot drift apart."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from maas.core.classifier import Classifier, Prediction
from maas.service import schemas, tracing
from maas.service.models import ModelService
from maas.service.settings import ServiceSettings

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
MAX_LABEL_METRICS = 20


class FunctionRuntime:
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.logger = Logger()
        self.tracer = tracing.tracer()  # X-Ray when traced; no SDK import when not
        self.metrics = Metrics(namespace=settings.metrics_namespace)
        self.service = ModelService.from_settings(settings, on_load=self._record_load)

    def _record_load(self, classifier: Classifier, seconds: float) -> None:
        self.metrics.add_metric("ModelLoadTime", MetricUnit.Milliseconds, seconds * 1000)
        self.logger.info("model loaded", model=classifier.name, version=classifier.version)

    def version_metrics(
        self, classifier: Classifier, predictions: Sequence[Prediction], latency_ms: float
    ) -> None:
        """Metrics per model version (what a canary is judged by): texts, latency, and how
        many got each label (models of up to MAX_LABEL_METRICS labels)."""
        metrics = self._per_version(classifier.name, classifier.version)
        metrics.add_metric("VersionPredictions", MetricUnit.Count, len(predictions))
        metrics.add_metric("VersionLatency", MetricUnit.Milliseconds, latency_ms)
        if len(classifier.labels) <= MAX_LABEL_METRICS:
            counts = Counter(p.label for p in predictions)
            for label in classifier.labels:
                metrics.add_metric(f"Label_{label}", MetricUnit.Count, counts[label])
        metrics.flush_metrics()

    def version_failed(self, ref: str | None, routing_key: str | None) -> None:
        """`VersionErrors` for the version this request was routed to, when it failed on our
        side (it cannot be loaded, or crashed): what tells a failing canary apart."""
        try:
            name, _, version = self.service.routed(ref, routing_key).partition(":")
        except Exception:  # the alias itself could not be resolved: no version to blame
            return
        metrics = self._per_version(name, version)
        metrics.add_metric("VersionErrors", MetricUnit.Count, 1)
        metrics.flush_metrics()

    def run_shadow(
        self,
        texts: Sequence[str],
        ref: str | None,
        routing_key: str | None,
        live: Classifier,
        predictions: Sequence[Prediction],
    ) -> None:
        """The alias's shadow version on the same texts, when this key is in its sample: its
        agreement with the answer given is a metric and a log line (no texts). A shadow that
        fails is logged and counted; the answer is already computed and unaffected."""
        try:
            report = self.service.shadow(texts, ref, routing_key, live, predictions)
        except Exception as exc:
            self.metrics.add_metric("ShadowErrors", MetricUnit.Count, 1)
            self.logger.warning("shadow failed", error=type(exc).__name__, model=live.name)
            return
        if report is None:
            return
        metrics = self._per_version(report.name, report.version)
        metrics.add_dimension(name="live_version", value=report.live_version)
        metrics.add_metric("ShadowAgreement", MetricUnit.Percent, 100 * report.agreement)
        metrics.add_metric("ShadowTexts", MetricUnit.Count, report.texts)
        metrics.flush_metrics()
        self.logger.info(
            "shadow compared",
            model=report.name,
            live_version=report.live_version,
            shadow_version=report.version,
            texts=report.texts,
            agreed=report.agreed,
            agreement=round(report.agreement, 4),
        )

    def _per_version(self, name: str, version: str) -> EphemeralMetrics:
        metrics = EphemeralMetrics(namespace=self.settings.metrics_namespace)
        metrics.add_dimension(name="model", value=name)
        metrics.add_dimension(name="version", value=version)
        return metrics

    def warm(self) -> None:
        """Load the default model during the cold start (free init time); a failure is logged
        and the first request or message tries again."""
        if self.service.default_model:
            try:
                self.service.classifier()
            except Exception:
                self.logger.warning("could not warm the default model", exc_info=True)

    def lambda_handler(self, handle: Handler, correlation_id_path: str | None = None) -> Handler:
        """`handle` as a Lambda handler: the function's limits in force while it runs, its
        metrics flushed (with the cold-start metric), traced, and logged with the context."""

        @functools.wraps(handle)
        def within_limits(event: dict[str, Any], context: Any) -> dict[str, Any]:
            with schemas.enforcing(self.settings.limits):
                return handle(event, context)

        wrapped: Handler = self.metrics.log_metrics(capture_cold_start_metric=True)(within_limits)
        wrapped = self.tracer.capture_lambda_handler(wrapped)
        decorated: Handler = self.logger.inject_lambda_context(
            correlation_id_path=correlation_id_path
        )(wrapped)
        return decorated
