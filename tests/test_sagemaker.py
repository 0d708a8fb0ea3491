"""`maas train --on sagemaker` end to end against moto's SageMaker, S3 and CloudWatch Logs.

moto records a training job and answers "Completed" at once; it runs no container. So the
SageMaker endpoint the CLI talks to is a small proxy in front of moto (`FakeSageMaker`) that
does what the service does with a job: on CreateTrainingJob it downloads the job's input
channel from S3, runs the training image's entry point (`python -m maas.training train`, with
/opt/ml's folders moved to a temporary one) in the training environment, writes its stderr to the
job's CloudWatch log stream, and uploads /opt/ml/model as model.tar.gz where moto says the
artifact is. While that runs, DescribeTrainingJob answers InProgress/Training; a failed run
answers Failed with /opt/ml/output/failure as the reason. Everything else goes to moto as is.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import REPO, TRAIN_PYTHON, open_store

pytestmark = [pytest.mark.integration, pytest.mark.train]

MAAS = str(Path(sys.executable).with_name("maas"))
ROLE = "arn:aws:iam::123456789012:role/maas-training"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/maas-train:latest"


class FakeSageMaker:
    """The proxy: moto for the API, a local run of the entry point for the job itself."""

    def __init__(self, moto: str, work: Path) -> None:
        self.moto, self.work = moto, work
        self.running: dict[str, threading.Thread] = {}
        self.failed: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                target = self.headers.get("X-Amz-Target", "")
                forwarded = urllib.request.Request(
                    fake.moto + self.path, data=body, method="POST", headers=dict(self.headers)
                )
                with urllib.request.urlopen(forwarded) as answer:
                    status, payload = answer.status, answer.read()
                if target.endswith("CreateTrainingJob"):
                    fake.start(json.loads(body))
                elif target.endswith("DescribeTrainingJob"):
                    payload = fake.describe(json.loads(payload))
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def start(self, request: dict[str, Any]) -> None:
        self.requests.append(request)
        name = request["TrainingJobName"]
        thread = threading.Thread(target=self.train, args=(request,), daemon=True)
        self.running[name] = thread
        thread.start()

    def describe(self, described: dict[str, Any]) -> bytes:
        name = described["TrainingJobName"]
        if name in self.running and self.running[name].is_alive():
            described.update(TrainingJobStatus="InProgress", SecondaryStatus="Training")
        elif name in self.failed:
            described.update(
                TrainingJobStatus="Failed",
                SecondaryStatus="Failed",
                FailureReason=self.failed[name],
            )
        return json.dumps(described).encode()

    def train(self, request: dict[str, Any]) -> None:
        """What SageMaker does with the job, with the entry point run here."""
        name = request["TrainingJobName"]
        s3 = boto3.client("s3", endpoint_url=self.moto)
        logs = boto3.client("logs", endpoint_url=self.moto)
        root = self.work / name
        channel = request["InputDataConfig"][0]
        source = channel["DataSource"]["S3DataSource"]["S3Uri"][5:]
        bucket, prefix = source.split("/", 1)
        data = root / "input" / "data" / channel["ChannelName"]
        data.mkdir(parents=True)
        for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]:
            s3.download_file(bucket, item["Key"], str(data / Path(item["Key"]).name))
        config = root / "input" / "config" / "hyperparameters.json"
        config.parent.mkdir(parents=True)
        config.write_text(json.dumps(request["HyperParameters"]), encoding="utf-8")
        (root / "model").mkdir()
        done = subprocess.run(
            [str(TRAIN_PYTHON), "-m", "maas.training", "train"],
            capture_output=True,
            text=True,
            env={
                **os.environ,
                "SM_INPUT_CONFIG_DIR": str(config.parent),
                "SM_CHANNEL_TRAIN": str(data),
                "SM_MODEL_DIR": str(root / "model"),
                "SM_OUTPUT_DIR": str(root / "output"),
                "TF_CPP_MIN_LOG_LEVEL": "3",
            },
            timeout=900,
        )
        group, stream = "/aws/sagemaker/TrainingJobs", f"{name}/algo-1-1700000000"
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        lines = (done.stderr + done.stdout).splitlines() or ["(no output)"]
        now = int(time.time() * 1000)  # CloudWatch keeps no events from before its retention
        logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(lines)],
        )
        if done.returncode != 0:
            failure = root / "output" / "failure"
            self.failed[name] = failure.read_text() if failure.is_file() else "AlgorithmError"
            return
        archive = root / "model.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for path in sorted((root / "model").iterdir()):
                tar.add(path, arcname=path.name)
        described = boto3.client("sagemaker", endpoint_url=self.moto).describe_training_job(
            TrainingJobName=name
        )
        out_bucket, key = described["ModelArtifacts"]["S3ModelArtifacts"][5:].split("/", 1)
        s3.upload_file(str(archive), out_bucket, key)


@pytest.fixture
def sagemaker(moto_endpoint: str, tmp_path: Path) -> Iterator[FakeSageMaker]:
    fake = FakeSageMaker(moto_endpoint, tmp_path / "sagemaker")
    yield fake
    fake.server.shutdown()


def run_cli(fake: FakeSageMaker, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL_SAGEMAKER": fake.endpoint,
        "MAAS_SAGEMAKER_POLL_S": "0.5",
        "MAAS_TRAIN_PYTHON": str(TRAIN_PYTHON),
    }
    return subprocess.run(
        [MAAS, "train", *args], capture_output=True, text=True, env=env, timeout=1200, cwd=REPO
    )


def test_train_on_sagemaker_end_to_end_to_a_published_version(
    sagemaker: FakeSageMaker, reviews_sample: Path, s3_bucket: str, tmp_path: Path
) -> None:
    out = tmp_path / "artifact"
    store = f"s3://{s3_bucket}/models"
    done = run_cli(
        sagemaker,
        str(reviews_sample),
        "--out", str(out),
        "--epochs", "3",
        "--on", "sagemaker",
        "--role", ROLE,
        "--image", IMAGE,
        "--s3", f"s3://{s3_bucket}/training",
        "--instance-type", "ml.g5.xlarge",
        "--spot",
        "--job-name", "reviews-e2e",
        "--publish", "reviews",
        "--store", store,
        "--alias", "production",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    # the job SageMaker was asked to run
    (request,) = sagemaker.requests
    assert request["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert request["RoleArn"] == ROLE
    assert request["ResourceConfig"]["InstanceType"] == "ml.g5.xlarge"
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"]["MaxWaitTimeInSeconds"] >= 14400
    assert json.loads(request["HyperParameters"]["maas-arguments"])[:2] == ["--text-column", "text"]
    s3 = boto3.client("s3")
    uploaded = s3.list_objects_v2(Bucket=s3_bucket, Prefix="training/reviews-e2e/input/")
    assert [o["Key"] for o in uploaded["Contents"]] == ["training/reviews-e2e/input/reviews.csv"]
    # status and log lines were followed, the artifact came back and was checked
    assert "reviews-e2e: InProgress (Training)" in done.stderr
    assert "reviews-e2e: Completed" in done.stderr
    assert "  | " in done.stderr and "epoch" in done.stderr.lower()  # the job's own log
    assert "verified with tflite-runtime 2.14" in done.stderr
    assert (out / "model.tflite").is_file() and (out / "manifest.json").is_file()
    # and it is the store's production version, served by the real classifier
    published = open_store(store)
    assert published.aliases("reviews") == {"production": "1"}
    assert done.stdout.strip().splitlines()[-1] == "1"


def test_a_failed_sagemaker_job_is_a_one_line_error(
    sagemaker: FakeSageMaker, s3_bucket: str, tmp_path: Path
) -> None:
    data = tmp_path / "one-label.csv"
    data.write_text("text,label\n" + "".join(f"text {i},only\n" for i in range(30)))
    done = run_cli(
        sagemaker,
        str(data),
        "--out", str(tmp_path / "never"),
        "--on", "sagemaker",
        "--role", ROLE,
        "--image", IMAGE,
        "--s3", f"s3://{s3_bucket}",
        "--job-name", "one-label",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("maas: error: SageMaker training job one-label failed:")
    assert "at least 2 different labels" in last
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "not-an-arn", "--image", IMAGE, "--s3", "s3://b"], "not an IAM role ARN"),
        (["--role", ROLE, "--s3", "s3://b"], "--image: name the training image"),
        (["--role", ROLE, "--image", IMAGE, "--s3", "b"], "give an s3://BUCKET"),
        (["--image", IMAGE, "--s3", "s3://b"], "needs --role ARN and --s3"),
        (["--role", ROLE, "--image", IMAGE, "--s3", "s3://b", "--job-name", "a_b"], "--job-name"),
    ],
)
def test_bad_sagemaker_options_are_refused_before_anything_is_uploaded(
    args: list[str], message: str, tmp_path: Path
) -> None:
    data = tmp_path / "d.csv"
    data.write_text("text,label\na,x\n")
    env = {k: v for k, v in os.environ.items() if k != "MAAS_TRAINING_IMAGE"}
    done = subprocess.run(
        [MAAS, "train", str(data), "--out", str(tmp_path / "o"), "--on", "sagemaker", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr
