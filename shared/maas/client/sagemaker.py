"""`maas train --on sagemaker`: the training job on a SageMaker GPU instance instead of here.

The data goes to S3 (boto3's transfer manager, with progress), a training job runs the training
image (infra/training/Dockerfile; SageMaker starts it as `IMAGE train`, maas.training.sagemaker)
with the job's options as a hyperparameter, this process follows its status and streams its
CloudWatch log, then downloads model.tar.gz and unpacks the artifact into --out. What happens
to it next is the same as after a local training: the serving runtime's check, then, if asked,
publishing (maas.cli.train).
"""

from __future__ import annotations

import json
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from maas.errors import InvalidInput, MaasError
from maas.training.options import SAGEMAKER_ARTIFACT as ARTIFACT
from maas.training.options import SAGEMAKER_CHANNEL as CHANNEL
from maas.training.options import SAGEMAKER_HYPERPARAMETER as HYPERPARAMETER
from maas.training.options import TrainingOptions

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
FINISHED = ("Completed", "Failed", "Stopped")
JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")  # SageMaker's own rule
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")


class TrainingJobFailed(MaasError):
    """The SageMaker job ended Failed or Stopped."""


@dataclass(frozen=True)
class SageMakerJob:
    role: str
    image: str
    s3: str  # s3://bucket/prefix: inputs under <prefix>/<job>/input, outputs under <prefix>/
    instance_type: str = "ml.g5.xlarge"
    spot: bool = False
    name: str | None = None
    max_runtime_s: int = 4 * 3600
    volume_gb: int = 30
    poll_s: float = 10.0

    def __post_init__(self) -> None:
        if not ROLE_ARN.match(self.role):
            raise InvalidInput(
                f"--role {self.role!r}: not an IAM role ARN (arn:aws:iam::ID:role/NAME)"
            )
        if not self.image:
            raise InvalidInput(
                "--image: name the training image in ECR (build it from infra/training/Dockerfile,"
                " see infra/training/README.md)"
            )
        if not self.s3.startswith("s3://") or not self.s3[5:].split("/")[0]:
            raise InvalidInput(
                f"--s3 {self.s3!r}: give an s3://BUCKET[/PREFIX] for the job's files"
            )
        if self.name is not None and not JOB_NAME.match(self.name):
            raise InvalidInput(f"--job-name {self.name!r}: 1-63 letters, digits and single hyphens")

    @property
    def bucket(self) -> str:
        return self.s3[5:].split("/", 1)[0]

    @property
    def prefix(self) -> str:
        rest = self.s3[5:].split("/", 1)
        return rest[1].strip("/") if len(rest) > 1 else ""

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)


def job_name(options: TrainingOptions) -> str:
    stem = re.sub(r"[^a-zA-Z0-9]+", "-", options.data.stem).strip("-")[:30] or "data"
    return f"maas-{stem}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"


def request(
    options: TrainingOptions, job: SageMakerJob, name: str, data_key: str
) -> dict[str, Any]:
    """The CreateTrainingJob request."""
    arguments = options.argv()[3:]  # after DATA --out DIR: the image chooses both
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": job.max_runtime_s}
    body: dict[str, Any] = {
        "TrainingJobName": name,
        "RoleArn": job.role,
        "AlgorithmSpecification": {"TrainingImage": job.image, "TrainingInputMode": "File"},
        "HyperParameters": {HYPERPARAMETER: json.dumps(arguments)},
        "InputDataConfig": [
            {
                "ChannelName": CHANNEL,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{job.bucket}/{data_key.rsplit('/', 1)[0]}/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{job.bucket}/{job.key('output')}"},
        "ResourceConfig": {
            "InstanceType": job.instance_type,
            "InstanceCount": 1,
            "VolumeSizeInGB": job.volume_gb,
        },
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": job.spot,
        "Tags": [{"Key": "maas:job", "Value": "train"}],
    }
    if job.spot:  # a spot job may wait for capacity; SageMaker requires the wait in the limit
        stopping["MaxWaitTimeInSeconds"] = job.max_runtime_s * 2
        body["CheckpointConfig"] = {"S3Uri": f"s3://{job.bucket}/{job.key(name, 'checkpoints')}"}
    return body


def run(
    options: TrainingOptions,
    job: SageMakerJob,
    *,
    session: Any = None,
    say: Callable[[str], None] = print,
    upload_progress: Callable[[int], None] | None = None,
) -> Path:
    """Train on SageMaker; returns options.out, holding the downloaded artifact."""
    import boto3

    out = options.out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        # refused before anything is uploaded or paid for
        raise InvalidInput(f"--out {out}: exists and is not empty")

    session = session or boto3.session.Session()
    s3, sagemaker = session.client("s3"), session.client("sagemaker")
    name = job.name or job_name(options)
    data_key = job.key(name, "input", options.data.name)
    say(f"uploading {options.data} to s3://{job.bucket}/{data_key}")
    s3.upload_file(str(options.data), job.bucket, data_key, Callback=upload_progress)
    sagemaker.create_training_job(**request(options, job, name, data_key))
    say(
        f"started SageMaker training job {name} ({job.instance_type}{', spot' if job.spot else ''})"
    )
    try:
        described = follow(sagemaker, session.client("logs"), name, job.poll_s, say)
    except KeyboardInterrupt:
        sagemaker.stop_training_job(TrainingJobName=name)
        say(f"asked SageMaker to stop {name}")
        raise
    status = described["TrainingJobStatus"]
    if status != "Completed":
        reason = described.get("FailureReason") or "no reason given"
        raise TrainingJobFailed(f"SageMaker training job {name} {status.lower()}: {reason}")
    uri = described["ModelArtifacts"]["S3ModelArtifacts"]
    bucket, key = uri[5:].split("/", 1)
    say(f"downloading {uri}")
    unpack(s3, bucket, key, options.out)
    billable = described.get("BillableTimeInSeconds")
    if billable is not None:
        say(f"{name}: {billable} billable seconds on {job.instance_type}")
    return options.out


def follow(
    sagemaker: Any, logs: Any, name: str, poll_s: float, say: Callable[[str], None]
) -> dict[str, Any]:
    """Poll the job until it ends, saying each new status and streaming its log lines."""
    seen_status = None
    lines = log_lines(logs, name)
    while True:
        described: dict[str, Any] = sagemaker.describe_training_job(TrainingJobName=name)
        status = (described["TrainingJobStatus"], described.get("SecondaryStatus"))
        if status != seen_status:
            say(f"{name}: {status[0]}" + (f" ({status[1]})" if status[1] else ""))
            seen_status = status
        for line in lines():
            say(f"  | {line}")
        if status[0] in FINISHED:
            for line in lines():  # what the job wrote while it finished
                say(f"  | {line}")
            return described
        time.sleep(poll_s)


def log_lines(logs: Any, name: str) -> Callable[[], Iterator[str]]:
    """A reader of the job's CloudWatch log streams that yields only lines not yet seen."""
    tokens: dict[str, str | None] = {}

    def read() -> Iterator[str]:
        try:
            streams = logs.describe_log_streams(
                logGroupName=LOG_GROUP, logStreamNamePrefix=f"{name}/"
            )["logStreams"]
        except logs.exceptions.ResourceNotFoundException:
            return  # no log yet: the instance is still starting
        for stream in streams:
            stream_name = stream["logStreamName"]
            while True:
                kwargs: dict[str, Any] = {
                    "logGroupName": LOG_GROUP,
                    "logStreamName": stream_name,
                    "startFromHead": True,
                }
                if tokens.get(stream_name):
                    kwargs["nextToken"] = tokens[stream_name]
                page = logs.get_log_events(**kwargs)
                for event in page["events"]:
                    yield event["message"].rstrip("\n")
                if page.get("nextForwardToken") in (None, tokens.get(stream_name)):
                    break
                tokens[stream_name] = page["nextForwardToken"]
                if not page["events"]:
                    break

    return read


def unpack(s3: Any, bucket: str, key: str, out: Path) -> None:
    """model.tar.gz -> out: only the artifact folder, only plain files and folders, nothing
    outside it (tarfile's data filter refuses links, devices and escaping paths)."""
    with tempfile.TemporaryDirectory(prefix="maas-sagemaker-") as work:
        archive = Path(work) / "model.tar.gz"
        try:
            s3.download_file(bucket, key, str(archive))
        except s3.exceptions.ClientError as exc:
            raise TrainingJobFailed(f"s3://{bucket}/{key}: {exc}") from None
        with tarfile.open(archive, "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.name.split("/")[0] == ARTIFACT]
            if not members:
                raise TrainingJobFailed(f"s3://{bucket}/{key} holds no {ARTIFACT}/ folder")
            tar.extractall(work, members=members, filter="data")
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            out.rmdir()
        shutil.move(str(Path(work) / ARTIFACT), str(out))
