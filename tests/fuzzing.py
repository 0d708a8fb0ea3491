"""Hypothesis strategies for what an attacker sends - API Gateway events, SQS message bodies,
mutated model files - and the checks every answer must pass. Used by tests/test_fuzz.py (a
few thousand cases in `make test`) and `make fuzz` (MAAS_FUZZ_SCALE=10 and a report)."""

from __future__ import annotations

import base64
import json
import os
import resource
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

SCALE = float(os.environ.get("MAAS_FUZZ_SCALE", "1"))
SECRET = "ZQXJsecretZQXJ"  # planted in texts: it must never reach a log line


def examples(count: int) -> int:
    return max(1, int(count * SCALE))


# ----------------------------------------------------------------------------------- texts
def texts() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=50),
        st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=300).map(
            lambda t: f"{t} {SECRET}"
        ),
        st.sampled_from(["很好", "太差了，不推荐", " ", "", "\x00", "\ud800", "\ufdfa" * 50]),
        st.integers(0, 12_000).map(lambda n: "好" * n),
        st.sampled_from(["\u3300", "\ufdfa", "ß", "\u0301"]).map(lambda c: c * 9_999),
    )


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        texts(),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=20), inner, max_size=5)
        ),
        max_leaves=20,
    )


def request_bodies() -> st.SearchStrategy[Any]:
    """Mostly plausible requests (so validation is reached deeply), and anything at all."""
    fields = st.fixed_dictionaries(
        {},
        optional={
            "text": st.one_of(texts(), json_values()),
            "texts": st.one_of(st.lists(texts(), max_size=70), json_values()),
            "explain": st.one_of(st.booleans(), json_values()),
            "id": st.one_of(st.text(max_size=300), json_values()),
            "ids": st.one_of(st.lists(st.text(max_size=10), max_size=5), json_values()),
            "model": st.one_of(st.sampled_from(["reviews", "reviews@production"]), st.text()),
            "batch": st.one_of(st.text(max_size=20), json_values()),
            "extra": json_values(),
        },
    )
    return st.one_of(fields, json_values())


def raw_bodies() -> st.SearchStrategy[str | bytes]:
    hostile = st.sampled_from(
        [
            '{"text": ' + "[" * 5000 + "]" * 5000 + "}",
            '{"text": ' + "9" * 5000 + "}",
            '{"text": NaN}',
            '{"text": "\\ud800"}',
            '{"text": "a"',
            "[" * 100_000,
            json.dumps({f"k{i}" * 50: i for i in range(2000)}),
            '--x\r\nContent-Disposition: form-data; name="text"\r\n\r\n很好\r\n--x--',
            "text=%E5%BE%88%E5%A5%BD",
        ]
    )
    return st.one_of(
        request_bodies().map(lambda v: json.dumps(v, ensure_ascii=False)),
        hostile,
        st.text(max_size=200),
        st.binary(max_size=200),
    )


CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "text/plain",
    "multipart/form-data",
    "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded",
    "application/octet-stream",
]


@st.composite
def http_events(draw: st.DrawFn, template: dict[str, Any]) -> dict[str, Any]:
    """API Gateway HTTP API (v2) events built from a committed one."""
    event: dict[str, Any] = json.loads(json.dumps(template))
    name = draw(
        st.one_of(
            st.sampled_from(["reviews", "reviews@production", "reviews:1", "reviews%40production"]),
            st.text(max_size=40),
        )
    )
    path = draw(
        st.one_of(
            st.sampled_from(
                [
                    f"/models/{name}/predict",
                    f"/models/{name}",
                    "/health",
                    "/openapi.json",
                    "/",
                    "/models//predict",
                ]
            ),
            st.text(max_size=60).map(lambda t: "/" + t),
        )
    )
    method = draw(
        st.one_of(
            st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
            st.text(max_size=10),
        )
    )
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["routeKey"] = event["requestContext"]["routeKey"] = "$default"
    event.pop("pathParameters", None)
    headers = {k: v for k, v in event["headers"].items() if k != "content-type"}
    content_type = draw(st.one_of(st.sampled_from(CONTENT_TYPES), st.text(max_size=30), st.none()))
    if content_type is not None:
        headers["content-type"] = content_type
    headers.update(draw(st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=3)))
    event["headers"] = headers
    body = draw(st.one_of(st.none(), st.just(""), raw_bodies()))
    event.pop("body", None)
    event["isBase64Encoded"] = False
    if body is not None:
        if isinstance(body, bytes) or (draw(st.booleans()) and draw(st.booleans())):
            data = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
            event["body"] = base64.b64encode(data).decode()
            event["isBase64Encoded"] = True
            if draw(st.integers(0, 9)) == 0:
                event["body"] += "!"  # not base64 at all
        else:
            event["body"] = body
    if draw(st.integers(0, 9)) == 0:
        event["rawQueryString"] = draw(st.text(max_size=30))
    return event


def queue_bodies() -> st.SearchStrategy[str]:
    ids = st.one_of(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,12}", fullmatch=True), st.text())
    messages = st.fixed_dictionaries(
        {"id": ids},
        optional={
            "text": texts(),
            "texts": st.lists(texts(), min_size=0, max_size=5),
            "ids": st.lists(st.text(min_size=1, max_size=8), max_size=5),
            "model": st.sampled_from(["reviews", "reviews@production", "nope", "bad name"]),
            "batch": st.one_of(st.sampled_from(["fuzz"]), st.text(max_size=10)),
            "explain": st.booleans(),
        },
    )
    return st.one_of(
        messages.map(lambda m: json.dumps(m, ensure_ascii=False)),
        raw_bodies().map(lambda b: b if isinstance(b, str) else b.decode("utf-8", "replace")),
    )


# ---------------------------------------------------------------------------------- checks
MAX_ERROR_BODY = 16 * 1024


def check_http_answer(response: dict[str, Any]) -> int:
    """What every answer must be: a status under 500, JSON, an error in the one shape."""
    status = int(response["statusCode"])
    assert status < 500, response
    body = json.loads(response["body"]) if response.get("body") else None
    if status >= 400:
        assert isinstance(body, dict) and set(body) == {"error"}, body
        error = body["error"]
        assert isinstance(error["code"], str) and error["code"] and error["message"], body
        assert len(response["body"]) <= MAX_ERROR_BODY, f"{len(response['body'])}-byte error"
    return status


@dataclass
class Record:
    """What the large run reports."""

    name: str
    statuses: Counter[str] = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)
    rss_start_kib: int = field(default_factory=lambda: rss_kib())
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, status: int | str, seconds: float) -> None:
        self.statuses[str(status)] += 1
        self.seconds.append(seconds)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.seconds)
        p99 = ordered[int(0.99 * (len(ordered) - 1))] if ordered else 0.0
        return {
            "cases": len(self.seconds),
            "statuses": dict(sorted(self.statuses.items())),
            "median_ms": round(statistics.median(ordered) * 1000, 3) if ordered else 0.0,
            "p99_ms": round(p99 * 1000, 3),
            "max_ms": round(ordered[-1] * 1000, 3) if ordered else 0.0,
            "rss_growth_mib": round((rss_kib() - self.rss_start_kib) / 1024, 1),
            **self.extra,
        }


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def timed(call: Any, *args: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = call(*args)
    return value, time.perf_counter() - started
