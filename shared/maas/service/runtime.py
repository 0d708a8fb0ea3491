"""What both functions set up once per cold start: settings, Powertools' Logger, Metrics and
Tracer, the model service, the warm-up of the default model, and the decorators every handler
wears. Written once, so the HTTP and the queue function cannot drift apart."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from maas.core.classifier import Classifier
from maas.service import schemas, tracing
from maas.service.models import ModelService
from maas.service.settings import ServiceSettings

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


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
