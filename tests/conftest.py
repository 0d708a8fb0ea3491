"""Shared fixtures: a real (small) trained model, local and S3 (moto server) stores."""

from __future__ import annotations

import contextlib
import csv
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from maas.store.registry import ModelStore
from maas.store.signing import HmacKey

REPO = Path(__file__).resolve().parent.parent
TRAIN_PYTHON = REPO / ".venv-train" / "bin" / "python"
REVIEWS = REPO / "data" / "reviews-zh" / "reviews.csv"
PACKAGES = REPO / "data" / "debian-packages" / "packages.csv"

# One signing key for the session, as a deployment has one: every store a test publishes to
# signs with it (`open_store`), and every function and CLI process verifies with it.
SIGNING_KEY = Path(tempfile.mkdtemp(prefix="maas-test-key-")) / "signing.key"
SIGNER = HmacKey(SIGNING_KEY, create=True)

# Tests never talk to AWS: fake credentials, a fixed region, no X-Ray, no telemetry.
os.environ.update(
    MAAS_SIGNING_KEY=str(SIGNING_KEY),
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_METRICS_NAMESPACE="maas-test",
    POWERTOOLS_SERVICE_NAME="maas-test",
    SAM_CLI_TELEMETRY="0",
)


def open_store(uri: str | Path) -> ModelStore:
    """A store that signs with the session's key, like `maas publish` does."""
    return ModelStore.open(uri, SIGNER)


def sample_rows(source: Path, per_label: int, seed: int = 7) -> list[dict[str, str]]:
    """A deterministic, label-balanced sample of a real dataset."""
    with source.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_label: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(row)
    rng = random.Random(seed)
    picked = [
        row for group in by_label.values() for row in rng.sample(group, min(per_label, len(group)))
    ]
    rng.shuffle(picked)
    return picked


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def train(data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run the real training job in the training environment."""
    return subprocess.run(
        [str(TRAIN_PYTHON), "-m", "maas.training", str(data), "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="session")
def reviews_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 real Chinese reviews (300 per label)."""
    return write_csv(tmp_path_factory.mktemp("data") / "reviews.csv", sample_rows(REVIEWS, 300))


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory, reviews_sample: Path) -> Path:
    """A binary default-preset model trained once per session on real reviews."""
    out = tmp_path_factory.mktemp("artifact") / "reviews"
    result = train(reviews_sample, out, "--epochs", "8", "--seed", "1")
    if result.returncode != 0:
        pytest.fail(f"training failed:\n{result.stdout}\n{result.stderr}")
    return out


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto in server mode on loopback: real S3/SQS APIs over HTTP."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    previous = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        yield endpoint
    finally:
        if previous is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = previous
        server.stop()


@pytest.fixture
def s3_bucket(moto_endpoint: str) -> Iterator[str]:
    """A fresh, empty bucket on the moto server; yields its name."""
    import uuid

    import boto3

    name = f"maas-test-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    client.create_bucket(Bucket=name)
    yield name


@pytest.fixture
def python() -> str:
    """The serving environment's interpreter (the one running the tests)."""
    return sys.executable


# ------------------------------------------------------------------------------ maas serve
MAAS = str(Path(sys.executable).with_name("maas"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Server:
    url: str
    store: Path
    process: subprocess.Popen[str]


@contextlib.contextmanager
def maas_serve(store: Path, cache: Path) -> Iterator[Server]:
    """`maas serve` as a person starts it, on a free loopback port, stopped with Ctrl-C
    (SIGINT) at the end: a clean exit without a traceback."""
    port = free_port()
    env = {**os.environ, "MAAS_CACHE_DIR": str(cache)}
    env.pop("MAAS_MODEL_NAME", None)  # the store's only model is the default
    process = subprocess.Popen(
        [MAAS, "serve", "--store", str(store), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"maas serve did not start:\n{process.communicate()[1]}")
            time.sleep(0.2)
    yield Server(url, store, process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, f"Ctrl-C is a clean stop, not exit {process.returncode}"
    assert "Traceback" not in err, err
