"""The serving core: text -> tokenizer -> interpreter -> labels. No network, no environment
variables, no store: it opens an artifact directory and answers. Runs on Lambda, on a laptop
and inside the training job alike."""

from maas._lazy import exports

_NAMES = {
    "Classifier": "maas.core.classifier",
    "Prediction": "maas.core.classifier",
    "Limits": "maas.core.limits",
    "check_text": "maas.core.limits",
    "Manifest": "maas.core.manifest",
    "Tokenizer": "maas.core.tokenizer",
    "TokenizerSpec": "maas.core.tokenizer",
}
__all__ = sorted(_NAMES)
__getattr__ = exports(__name__, _NAMES)
