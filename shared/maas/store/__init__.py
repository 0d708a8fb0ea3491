"""The model store: references (`refs`), where objects live (`backends`: a directory or S3),
versions and aliases (`registry`), and what must hold before an artifact is published
(`publishing`, used on a user's machine, not shipped to Lambda)."""

from maas._lazy import exports

_NAMES = {
    "DEFAULT_ALIAS": "maas.store.refs",
    "DEFAULT_STORE": "maas.store.backends",
    "Backend": "maas.store.backends",
    "LocalBackend": "maas.store.backends",
    "S3Backend": "maas.store.backends",
    "backend_for": "maas.store.backends",
    "ModelRef": "maas.store.refs",
    "LocalModel": "maas.store.registry",
    "ModelStore": "maas.store.registry",
}
__all__ = sorted(_NAMES)
__getattr__ = exports(__name__, _NAMES)
