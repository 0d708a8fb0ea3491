"""Run the Lambda functions in this process, the way the Lambda runtime does: a context
object, a cold start that imports `functions/<name>/app.py` afresh, the committed events.

Used by `maas demo`, the local SQS event source, the tests and the benchmarks, so that all of
them exercise the real entry points with the committed events. Not shipped to Lambda.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

from maas.errors import BadData

REPO = Path(__file__).resolve().parents[3]
FUNCTIONS = REPO / "functions"
EVENTS = REPO / "events"


def lambda_context(
    function_name: str = "maas", memory_mb: int = 1024, timeout_ms: int = 30_000
) -> Any:
    """The attributes of a Lambda context object that Powertools reads; the remaining time
    counts down from `timeout_ms` as in Lambda."""
    deadline = time.monotonic() + timeout_ms / 1000
    return SimpleNamespace(
        function_name=function_name,
        function_version="$LATEST",
        memory_limit_in_mb=memory_mb,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}",
        aws_request_id=str(uuid.uuid4()),
        get_remaining_time_in_millis=lambda: max(0, int((deadline - time.monotonic()) * 1000)),
    )


def load_function(function: str | Path) -> ModuleType:
    """Import `functions/<name>/app.py` (or an app.py path) afresh under a unique module name,
    as a new Lambda process does: a cold start, which reads the environment and warms the
    default model now."""
    path = Path(function) if str(function).endswith(".py") else FUNCTIONS / str(function) / "app.py"
    if not path.is_file():
        raise BadData(f"{path} not found: this needs a maas source checkout")
    spec = importlib.util.spec_from_file_location(f"maas_function_{uuid.uuid4().hex}", path)
    if spec is None or spec.loader is None:
        raise BadData(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_event(kind: str, name: str) -> dict[str, Any]:
    """A committed event, e.g. `load_event("http", "predict-one")`."""
    event: dict[str, Any] = json.loads((EVENTS / kind / f"{name}.json").read_text("utf-8"))
    return event


class _Discard(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


@contextlib.contextmanager
def function_logs(shown: bool) -> Iterator[None]:
    """Where a function built and run inside the block writes its JSON log and metric lines
    (stdout, which CloudWatch collects on Lambda): on a laptop they are noise unless asked
    for. Powertools binds the stream when a function is built, so build it inside."""
    with contextlib.redirect_stdout(sys.stdout if shown else _Discard()):
        yield
