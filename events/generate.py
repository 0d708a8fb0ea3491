"""Regenerate the committed Lambda test events from `sam local generate-event` skeletons.

    SAM_CLI_TELEMETRY=0 .venv/bin/python events/generate.py      # needs .venv-tools/bin/sam

The HTTP events are API Gateway HTTP API (payload v2) requests as the API in template.yaml
sends them: a route key, the `name` path parameter, a JSON body as plain text (HTTP API only
base64-encodes binary bodies), no authorizer. The SQS events are batches as the event source
mapping delivers them. Texts are real reviews from data/reviews-zh; the model is `reviews`.
"""

# Chinese text uses full-width punctuation; it is data, not a typo:

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SAM = HERE.parent / ".venv-tools" / "bin" / "sam"
MODEL = "reviews"

POSITIVE = "非常好的酒店，四星的标准完全超值的享受，服务非常好"
POSITIVE_2 = "服务很好，环境也不错，很舒服，餐厅也很舒服，很温馨。"
NEGATIVE = "差差差，太差了！不是一般的差，我希望以后携程不要再推荐这样的酒店给我！！！"
NEGATIVE_2 = "靠近路边的房间太吵太吵了，根本没有办法睡觉。劝大家千万不要去了。"

# name -> (method, route, path, body); body None: no body, str: sent as is, else JSON
HTTP: dict[str, tuple[str, str, str, Any]] = {
    "predict-one": (
        "POST",
        "/models/{name}/predict",
        f"/models/{MODEL}/predict",
        {"text": POSITIVE},
    ),
    "predict-many": (
        "POST",
        "/models/{name}/predict",
        f"/models/{MODEL}/predict",
        {"texts": [POSITIVE_2, NEGATIVE, NEGATIVE_2, POSITIVE]},
    ),
    "predict-explain": (
        "POST",
        "/models/{name}/predict",
        f"/models/{MODEL}/predict",
        {"text": POSITIVE, "explain": True},
    ),
    "get-model": ("GET", "/models/{name}", f"/models/{MODEL}", None),
    "health": ("GET", "/health", "/health", None),
    "bad-malformed-json": (
        "POST",
        "/models/{name}/predict",
        f"/models/{MODEL}/predict",
        '{"text": "服务很好",',
    ),
    "bad-empty-text": (
        "POST",
        "/models/{name}/predict",
        f"/models/{MODEL}/predict",
        {"text": "   "},
    ),
    "bad-too-many-texts": (
        "POST",
        "/models/{name}/predict",
        f"/models/{MODEL}/predict",
        {"texts": ["很好"] * 65},
    ),
    "bad-text-too-long": (
        "POST",
        "/models/{name}/predict",
        f"/models/{MODEL}/predict",
        {"text": "很好" * 5001},
    ),
    "bad-wrong-type": (
        "POST",
        "/models/{name}/predict",
        f"/models/{MODEL}/predict",
        {"texts": "很好"},
    ),
    "bad-unknown-model": (
        "POST",
        "/models/{name}/predict",
        "/models/no-such-model/predict",
        {"text": POSITIVE},
    ),
}

GOOD: list[dict[str, Any]] = [
    {"id": "review-0001", "batch": "demo", "text": POSITIVE},
    {"id": "review-0002", "batch": "demo", "texts": [NEGATIVE, POSITIVE_2]},
    {"id": "review-0003", "batch": "demo", "text": NEGATIVE_2, "model": f"{MODEL}@production"},
]
SQS: dict[str, list[Any]] = {
    "good-batch": GOOD,
    "mixed-batch": [
        GOOD[0],
        '{"id": "review-0102", "text": "房间很大',  # poison: truncated JSON
        {"id": "review-0103", "batch": "demo"},  # poison: no text
        GOOD[2] | {"id": "review-0104"},
    ],
}


def sam(*args: str) -> dict[str, Any]:
    env = dict(os.environ, SAM_CLI_TELEMETRY="0")
    out = subprocess.run(
        [str(SAM), "local", "generate-event", *args], check=True, capture_output=True, env=env
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def http_event(skeleton: dict[str, Any], method: str, route: str, path: str, body: Any) -> Any:
    event = copy.deepcopy(skeleton)
    for unused in ("cookies", "queryStringParameters", "stageVariables"):
        event.pop(unused)
    context = event["requestContext"]
    for unused in ("authentication", "authorizer"):
        context.pop(unused)
    route_key = f"{method} {route}"
    event.update(routeKey=route_key, rawPath=path, rawQueryString="", isBase64Encoded=False)
    headers = {
        "accept": "application/json",
        "host": context["domainName"],
        "user-agent": "curl/8.5.0",
    }
    if body is not None:
        text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
        headers |= {"content-type": "application/json", "content-length": str(len(text.encode()))}
        event["body"] = text
    else:
        event.pop("body")
    event["headers"] = headers
    if "{name}" in route:
        event["pathParameters"] = {"name": path.split("/")[2]}
    else:
        event.pop("pathParameters")
    context.update(
        routeKey=route_key, requestId=str(uuid.uuid5(uuid.NAMESPACE_URL, route_key + path))
    )
    context["http"].update(method=method, path=path, sourceIp="127.0.0.1", userAgent="curl/8.5.0")
    return event


def sqs_event(skeleton: dict[str, Any], name: str, messages: list[Any]) -> Any:
    (template,) = skeleton["Records"]
    records = []
    for number, message in enumerate(messages, 1):
        body = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
        record = copy.deepcopy(template)
        record.update(
            messageId=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{name}/{number}")),
            receiptHandle=f"{name}-receipt-{number}",
            body=body,
            md5OfBody=hashlib.md5(body.encode()).hexdigest(),
            eventSourceARN="arn:aws:sqs:us-east-1:123456789012:maas-predictions",
        )
        records.append(record)
    return {"Records": records}


def main() -> int:
    skeleton = sam("apigateway", "http-api-proxy")
    for name, spec in HTTP.items():
        write(HERE / "http" / f"{name}.json", http_event(skeleton, *spec))
    skeleton = sam("sqs", "receive-message")
    for name, messages in SQS.items():
        write(HERE / "sqs" / f"{name}.json", sqs_event(skeleton, name, messages))
    return 0


def write(path: Path, event: Any) -> None:
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(event, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(path.relative_to(HERE.parent), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
