"""Fixtures for the SAM tests: moto on 127.0.0.1 with the model published, an `--env-vars`
file, the local copy of the built template, and one `sam local start-api` per session.

The tests need a Docker engine, the Lambda base image and `sam build` output (`make docker-up
sam-build`). Without them they are skipped with the reason - or fail, when MAAS_REQUIRE_SAM=1
(`make test` sets it), so CI can never pass by skipping them.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from maas.store.registry import ModelStore
from maas.store.signing import open_signer
from sam import samlocal


def require(reason: str | None) -> None:
    """Skip with the reason - or fail, when MAAS_REQUIRE_SAM=1."""
    if reason is None:
        return
    if os.environ.get("MAAS_REQUIRE_SAM") == "1":
        pytest.fail(f"SAM tests cannot run: {reason} (MAAS_REQUIRE_SAM=1)", pytrace=False)
    pytest.skip(f"SAM tests need Docker and a SAM build: {reason}")


@pytest.fixture(scope="session")
def sam_built() -> None:
    require(samlocal.missing_build())


@pytest.fixture(scope="session")
def sam_ready() -> None:
    require(samlocal.missing_runtime())


@pytest.fixture(scope="session")
def sam_stack(
    sam_ready: None,
    trained_model: Path,
    moto_endpoint: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[samlocal.LocalStack]:
    """Buckets on moto, `reviews:1` published as @production where the template's MAAS_STORE
    points, and the files `sam local` needs. Removes the images SAM rebuilt this session."""
    import boto3

    buckets = {"ModelBucket": "maas-models", "ResultsBucket": "maas-results"}
    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    for bucket in buckets.values():
        s3.create_bucket(Bucket=bucket)
    # the template's ModelSigningKey, on moto: publish signs with it, the functions verify
    kms = boto3.client("kms", endpoint_url=moto_endpoint)
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    signing_key = f"kms:{key}"
    document = samlocal.env_vars(moto_endpoint, buckets, signing_key)
    env = document["Parameters"]
    store = ModelStore.open(env["MAAS_STORE"], open_signer(signing_key))
    store.publish(trained_model, "reviews", alias="production")

    work = tmp_path_factory.mktemp("sam")
    env_file = work / "env.json"
    env_file.write_text(json.dumps(document, indent=2), encoding="utf-8")
    template = samlocal.write_local_template(work / "template.yaml")
    images_before = samlocal.dangling_images()
    yield samlocal.LocalStack(
        moto_endpoint, buckets["ModelBucket"], buckets["ResultsBucket"], template, env_file, env
    )
    # Each `sam local` run rebuilds the function image (the layer is ADDed); the replaced
    # copies are dangling images that would pile up run after run.
    if stale := samlocal.dangling_images() - images_before:
        subprocess.run(["docker", "rmi", *stale], capture_output=True)


@pytest.fixture(scope="session")
def api(
    sam_stack: samlocal.LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[samlocal.Api]:
    work = tmp_path_factory.mktemp("start-api")
    template = samlocal.write_local_template(work / "template.yaml", api_only=True)
    with samlocal.start_api(template, sam_stack.env_file, work / "start-api.log") as running:
        yield running


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not samlocal.REPORTS:
        return
    write = terminalreporter.write_line
    terminalreporter.write_sep("=", "SAM REPORT lines (emulator figures)")
    write("From SAM's Runtime Interface Emulator, not from Lambda: Max Memory Used always equals")
    write("Memory Size and Init Duration is the emulator's own start; a cold start (imports, model")
    write("download and load) is inside the first Duration of each container.")
    for report in samlocal.REPORTS:
        write(str(report))
    write("raw:")
    for report in samlocal.REPORTS:
        write(f"  {report.line}")
