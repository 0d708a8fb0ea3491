"""What runs on a user's machine and talks to a deployment: the HTTP API's Python client
(`api`: `from maas.client import Client`), batch submission and follow-up over SQS and the
results sink (`batch`, `sqs`), reading data files (`data`), and the client side's settings
(`settings`)."""

from maas._lazy import exports

_NAMES = {
    name: "maas.client.api"
    for name in ("ApiError", "BearerToken", "Client", "Prediction", "Predictions", "SigV4")
}
__all__ = sorted(_NAMES)
__getattr__ = exports(__name__, _NAMES)
