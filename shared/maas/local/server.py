"""`maas serve`: the HTTP function on a laptop, behind a real HTTP server.

uvicorn (a well-kept ASGI server) accepts the connections; `maas.local.gateway.Gateway` turns
each request into the API Gateway event the deployed function would get and calls the same
handler the Lambda runs (`maas.service.http.HttpFunction`, built from the same settings), so
curl, a browser, Swagger UI and any HTTP client see exactly what the deployment answers. The
playground page (`/`) and Swagger UI (`/docs`) are the function's own routes, turned on here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from maas.local.gateway import Gateway
from maas.local.lambda_runtime import function_logs
from maas.service.http import HttpFunction
from maas.service.settings import ServiceSettings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


@dataclass(frozen=True)
class ServeOptions:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    quiet_function_logs: bool = True  # the function's JSON logs are for CloudWatch


def build(settings: ServiceSettings, log_request: Callable[[str], None] | None = None) -> Any:
    """The ASGI app: the HTTP function, built as a cold start builds it, behind the gateway."""
    function = HttpFunction(replace(settings, ui=True))

    def report(event: dict[str, Any], status: int, seconds: float) -> None:
        if log_request:
            method = event["requestContext"]["http"]["method"]
            log_request(f"{method} {event['rawPath']} -> {status} in {seconds * 1000:.1f} ms")

    return Gateway(function.handler, function_name="maas-serve", on_request=report)


def serve(settings: ServiceSettings, options: ServeOptions) -> None:
    """Run until Ctrl-C (uvicorn stops cleanly on SIGINT and SIGTERM)."""
    import uvicorn

    def note(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    shown = not options.quiet_function_logs
    with function_logs(shown):
        app = build(settings, note)
    config = uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        log_level="warning",
        lifespan="on",
        access_log=False,
    )
    server = uvicorn.Server(config)
    where = f"http://{options.host}:{options.port}"
    note(f"maas serve: {settings.store} on {where}  (playground {where}/, API docs {where}/docs)")
    note("Ctrl-C stops it.")
    try:
        with function_logs(shown):
            server.run()
    except KeyboardInterrupt:  # uvicorn shut down cleanly, then re-raised the Ctrl-C
        pass
    note("maas serve: stopped")
