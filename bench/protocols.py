"""The cost of the Open Inference Protocol next to the native route, through the same handler.

    .venv/bin/python bench/protocols.py ARTIFACT [--calls 2000] [--texts 1]

Publishes ARTIFACT to a temporary local store and calls the HTTP function's handler in process
with the same texts as `POST /models/{name}/predict`, as a V2 JSON inference request and as a
V2 binary one, interleaved call by call (so a busy machine slows all three alike); prints the
median and p99 of each and the V2 ÷ native ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "shared"))

TEXT = "房间很干净，服务也很好，下次还会再来"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("artifact", type=Path)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--texts", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="maas-protocols-"))
    os.environ.update(
        MAAS_STORE=str(work / "store"),
        MAAS_CACHE_DIR=str(work / "cache"),
        MAAS_MODEL_NAME="reviews",
        MAAS_SIGNING_KEY="none",
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="WARNING",
    )
    from maas.local.gateway import to_event
    from maas.local.lambda_runtime import lambda_context, load_function
    from maas.store.registry import ModelStore

    ModelStore.open(work / "store").publish(args.artifact, "reviews", alias="production")
    handler = load_function("http").handler
    texts = [TEXT] * args.texts
    json_type = [("content-type", "application/json")]
    native = to_event(
        "POST", "/models/reviews/predict", "", json_type, json.dumps({"texts": texts}).encode()
    )
    tensor = {"name": "text", "shape": [len(texts)], "datatype": "BYTES"}
    v2_json = to_event(
        "POST",
        "/v2/models/reviews/infer",
        "",
        json_type,
        json.dumps({"inputs": [tensor | {"data": texts}]}).encode(),
    )
    raw = b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in texts)
    header = json.dumps(
        {
            "inputs": [tensor | {"parameters": {"binary_data_size": len(raw)}}],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    v2_binary = to_event(
        "POST",
        "/v2/models/reviews/infer",
        "",
        [("inference-header-content-length", str(len(header)))],
        header + raw,
    )
    events = {"native": native, "v2 json": v2_json, "v2 binary": v2_binary}
    seconds: dict[str, list[float]] = {name: [] for name in events}
    with contextlib.redirect_stdout(io.StringIO()):  # the functions' metrics (EMF) print here
        for _ in range(50):  # warm
            for event in events.values():
                handler(event, lambda_context())
        for _ in range(args.calls):
            for name, event in events.items():
                started = time.perf_counter()
                answer = handler(event, lambda_context())
                seconds[name].append(time.perf_counter() - started)
                assert answer["statusCode"] == 200, answer
    base = statistics.median(seconds["native"])
    print(f"{args.calls} calls each, {len(texts)} text(s) a call, interleaved")
    for name, values in seconds.items():
        values.sort()
        p50, p99 = statistics.median(values), values[int(0.99 * len(values)) - 1]
        print(
            f"  {name:<10} p50 {p50 * 1000:.3f} ms  p99 {p99 * 1000:.3f} ms  "
            f"({p50 / base:.2f}x native)"
        )


if __name__ == "__main__":
    main()
