"""Errors users can act on: a stable code, a clear message and the HTTP status that fits."""

from __future__ import annotations

from typing import Any


class MaasError(Exception):
    """Base class. `code` is stable (clients branch on it); `message` is for people."""

    code = "maas_error"
    status = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class InvalidInput(MaasError):
    """The caller sent something we cannot classify (wrong shape, empty, too long...)."""

    code = "invalid_input"
    status = 422

    def __init__(self, message: str, code: str | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        if code:
            self.code = code


class ModelNotFound(MaasError):
    code = "model_not_found"
    status = 404


class InvalidModelRef(MaasError):
    code = "invalid_model_reference"
    status = 400


class IntegrityError(MaasError):
    """A stored file does not match the sha256 its manifest recorded."""

    code = "integrity_error"
    status = 500


class StoreError(MaasError):
    """The model store could not be read or written (permissions, network, layout)."""

    code = "store_error"
    status = 503


class VersionConflict(MaasError):
    """A version that already exists was about to be written again (versions are immutable)."""

    code = "version_conflict"
    status = 409


class QualityGateFailed(MaasError):
    code = "quality_gate_failed"
    status = 422


class GoldenMismatch(MaasError):
    """The serving runtime does not reproduce the golden examples recorded at training time."""

    code = "golden_mismatch"
    status = 500


class InternalError(MaasError):
    """Anything that is not a MaasError: a bug, reported with its type and message."""

    code = "internal_error"
    status = 500


class UnsupportedMediaType(InvalidInput):
    code = "unsupported_media_type"
    status = 415


class RouteNotFound(MaasError):
    code = "route_not_found"
    status = 404


class MethodNotAllowed(MaasError):
    code = "method_not_allowed"
    status = 405
