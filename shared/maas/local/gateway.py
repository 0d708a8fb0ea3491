"""API Gateway (HTTP API, payload format 2.0) in front of a Lambda handler, as an ASGI app.

Each HTTP request becomes the event API Gateway would send the function, the handler is
called with a Lambda context exactly as in AWS, and its answer becomes the HTTP response. So
curl, a browser, schemathesis or any HTTP client talks to the real handler; `maas serve` runs
this app with uvicorn, and the fuzz tests drive it in process.

What API Gateway itself does and this app does too: header names lower-cased and repeated
headers joined with commas, cookies apart, the query string raw and parsed, bodies over
`max_body_bytes` refused with 413 before the function sees them, binary bodies base64-encoded,
and the function's `isBase64Encoded` answers decoded.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from maas.local.lambda_runtime import lambda_context

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# API Gateway's own limit on a request (10 MB); Lambda's on a synchronous payload is 6 MB.
MAX_BODY_BYTES = 6 * 1024 * 1024
# Bodies API Gateway passes as text; anything else arrives base64-encoded.
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")
_TEXT_SUFFIXES = ("+json", "+xml")


def is_text(content_type: str) -> bool:
    media_type = content_type.split(";")[0].strip().lower()
    return media_type.startswith(_TEXT_TYPES) or media_type.endswith(_TEXT_SUFFIXES)


def to_event(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """The HTTP API v2 event of one request."""
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": joined,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": joined.get("host", "localhost"),
            "domainPrefix": "local",
            "http": {
                "method": method.upper(),
                "path": unquote(raw_path),
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": "$default",
            "stage": "$default",
            "time": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if body:
        text = None
        if is_text(joined.get("content-type", "")):
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        if text is None:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        else:
            event["body"] = text
    return event


def from_result(result: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body of a function's answer, as API Gateway reads payload 2.0."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # API Gateway's own reading of a bare value: a 200 with it as a JSON body
        return 200, [(b"content-type", b"application/json")], json.dumps(result).encode()
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    headers = [
        (str(name).lower().encode("latin-1"), str(value).encode("latin-1"))
        for name, value in (result.get("headers") or {}).items()
    ]
    headers += [
        (b"set-cookie", str(cookie).encode("latin-1")) for cookie in result.get("cookies") or []
    ]
    return int(result["statusCode"]), headers, raw


def _error(status: int, code: str, message: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return status, [(b"content-type", b"application/json")], body


class Gateway:
    """An ASGI app: every request to the one function behind it, like an HTTP API with a
    `$default` route. `handler` is called in a worker thread (it is synchronous, as on
    Lambda); one call at a time, as one Lambda execution environment serves one event."""

    def __init__(
        self,
        handler: Handler,
        *,
        function_name: str = "maas-http",
        max_body_bytes: int = MAX_BODY_BYTES,
        on_request: Callable[[dict[str, Any], int, float], None] | None = None,
    ) -> None:
        self.handler = handler
        self.function_name = function_name
        self.max_body_bytes = max_body_bytes
        self.on_request = on_request
        self._lock = threading.Lock()

    def invoke(self, event: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Call the handler with one event, as the Lambda runtime would (synchronously)."""
        started = time.perf_counter()
        with self._lock:
            result = self.handler(event, lambda_context(self.function_name))
        answer = from_result(result)
        if self.on_request:
            self.on_request(event, answer[0], time.perf_counter() - started)
        return answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body, too_large = bytearray(), False
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                too_large = True
                body.clear()
            if not message.get("more_body"):
                break
        if too_large:
            answer = _error(
                413, "payload_too_large", f"the body is over {self.max_body_bytes} bytes"
            )
        else:
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
            raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
            event = to_event(
                scope["method"],
                raw_path,
                scope.get("query_string", b"").decode("latin-1"),
                headers,
                bytes(body),
                (scope.get("client") or ("127.0.0.1", 0))[0],
            )
            loop = asyncio.get_running_loop()
            answer = await loop.run_in_executor(None, self.invoke, event)
        status, response_headers, payload = answer
        response_headers = [h for h in response_headers if h[0] != b"content-length"]
        response_headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})
