"""maas: text-classification models as a service.

The package is laid out by who runs the code:

    maas.core      the serving core: tokenizer, manifest, classifier (no network, no settings)
    maas.store     the model store: references, backends (directory, S3), versions, aliases
    maas.service   what runs on Lambda: the HTTP and queue functions and what they share
    maas.client    what runs on a user's machine against a deployment: batch, training launch
    maas.local     running the functions on a laptop (in process, with a local event source)
    maas.cli       the `maas` command
    maas.training  the training job (TensorFlow; its own environment)

The Lambda layer ships maas.core, maas.store and maas.service (and the small modules they use)
and nothing else. Serving modules never import TensorFlow; only maas.training does.
"""

from maas._lazy import exports

__version__ = "0.1.0"

_NAMES = {
    "Classifier": "maas.core.classifier",
    "Prediction": "maas.core.classifier",
    "Manifest": "maas.core.manifest",
    "Tokenizer": "maas.core.tokenizer",
    "ModelRef": "maas.store.refs",
    "ModelStore": "maas.store.registry",
    "ErrorCode": "maas.errors",
    "MaasError": "maas.errors",
}
__all__ = ["__version__", *sorted(_NAMES)]
__getattr__ = exports(__name__, _NAMES)
