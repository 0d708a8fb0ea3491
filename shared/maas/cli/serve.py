"""`maas serve`: the HTTP function on this machine, behind a real HTTP server."""

from __future__ import annotations

import argparse
import socket
from typing import Any

from maas.cli.common import STORE_HELP, command, store_uri, warn
from maas.errors import ConfigurationError
from maas.local.server import DEFAULT_HOST, DEFAULT_PORT


def add_parser(commands: Any) -> None:
    serve = command(
        commands,
        "serve",
        "serve the HTTP function locally: the API, a playground page, Swagger UI",
        "Serve the HTTP function on this machine with uvicorn: every request becomes the API "
        "Gateway event the deployed function gets and is answered by the same handler. The "
        "playground is at /, Swagger UI at /docs. Ctrl-C stops it.",
    )
    serve.add_argument("--store", metavar="URI", help=STORE_HELP)
    serve.add_argument(
        "--model",
        help="the model a request naming none uses (default: $MAAS_MODEL_NAME, or the store's "
        "only model)",
    )
    serve.add_argument("--host", default=DEFAULT_HOST, help="the address to listen on")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="the port to listen on")
    serve.add_argument(
        "--function-logs", action="store_true", help="print the function's JSON log lines too"
    )
    serve.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from maas.local.server import ServeOptions, serve
    from maas.service.settings import ServiceSettings
    from maas.store.registry import ModelStore

    store = store_uri(args.store)
    settings = ServiceSettings.from_env("http", store=store)
    model = args.model or settings.default_model
    if model is None:
        models = ModelStore.open(store).models()
        model = models[0] if len(models) == 1 else None
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        warn(f"listening on {args.host}: reachable beyond this machine, without authentication")
    _check_port(args.host, args.port)
    options = ServeOptions(args.host, args.port, quiet_function_logs=not args.function_logs)
    serve(ServiceSettings.from_env("http", store=store, default_model=model), options)
    return 0


def _check_port(host: str, port: int) -> None:
    """A clear error before uvicorn's own, for the usual mistake (the port is taken)."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise ConfigurationError(
            f"cannot listen on {host}:{port}: {exc.strerror} (choose another with --port)"
        ) from None
