"""SQS as a producer and a poller needs it: a client for a queue URL, SendMessageBatch with
retries, and the batch calls (delete, change visibility) in SQS-sized chunks. Every error is a
QueueError with AWS's reason (`maas.aws.errors`)."""

from __future__ import annotations

import json
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from maas import aws
from maas.core.limits import SQS_BATCH_ENTRIES, SQS_MAX_MESSAGE_BYTES
from maas.errors import QueueError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

SEND_ATTEMPTS = 8


def sqs_client(queue_url: str | None = None, region: str | None = None) -> SQSClient:
    """An SQS client (AWS_ENDPOINT_URL[_SQS] honoured). Without a configured region, the one
    in an AWS queue URL (sqs.<region>.amazonaws.com) is used."""
    import boto3
    from botocore.config import Config

    host = urlparse(queue_url or "").hostname or ""
    match = re.match(r"sqs\.([a-z0-9-]+)\.amazonaws\.com", host)
    if region is None and match and boto3.session.Session().region_name is None:
        region = match.group(1)
    config = Config(retries={"mode": "standard", "max_attempts": 5})
    with aws.errors("cannot make an SQS client", QueueError):
        client: SQSClient = boto3.client("sqs", region_name=region, config=config)
    return client


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def queue_attributes(client: SQSClient, queue_url: str) -> dict[str, str]:
    with aws.errors(f"cannot use queue {queue_url}", QueueError):
        response = client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])
    attributes: dict[str, str] = {str(k): v for k, v in response.get("Attributes", {}).items()}
    return attributes


def max_receive_count(attributes: dict[str, str]) -> int | None:
    """The receives before SQS dead-letters a message (the queue's RedrivePolicy), if any."""
    try:
        return int(json.loads(attributes["RedrivePolicy"])["maxReceiveCount"])
    except (KeyError, ValueError, TypeError):
        return None


def chunks(items: Sequence[Any], size: int = SQS_BATCH_ENTRIES) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def delete_messages(client: SQSClient, queue_url: str, receipt_handles: Sequence[str]) -> None:
    for chunk in chunks(receipt_handles):
        entries: Any = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(chunk)]
        with aws.errors(f"cannot delete from {queue_url}", QueueError):
            client.delete_message_batch(QueueUrl=queue_url, Entries=entries)


def release_messages(client: SQSClient, queue_url: str, receipt_handles: Sequence[str]) -> None:
    """Make received messages visible again at once (visibility timeout 0)."""
    for chunk in chunks(receipt_handles):
        entries: Any = [
            {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(chunk)
        ]
        with aws.errors(f"cannot release messages in {queue_url}", QueueError):
            client.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)


def receive(
    client: SQSClient, queue_url: str, *, most: int, wait_seconds: int, visibility: int | None
) -> list[dict[str, Any]]:
    """One ReceiveMessage call (at most 10 messages), with every system attribute."""
    params: dict[str, Any] = {
        "QueueUrl": queue_url,
        "MaxNumberOfMessages": min(SQS_BATCH_ENTRIES, most),
        "WaitTimeSeconds": wait_seconds,
        "MessageSystemAttributeNames": ["All"],
        "MessageAttributeNames": ["All"],
    }
    if visibility is not None:
        params["VisibilityTimeout"] = visibility
    with aws.errors(f"cannot read {queue_url}", QueueError):
        response = client.receive_message(**params)
    return list(response.get("Messages", []))  # type: ignore[arg-type]


@dataclass
class Sender:
    """SendMessageBatch with everything SQS asks of a producer: at most 10 entries and
    `max_bytes` a call, and the entries it reports as Failed sent again, with backoff."""

    client: SQSClient
    queue_url: str
    max_bytes: int = SQS_MAX_MESSAGE_BYTES
    attempts: int = SEND_ATTEMPTS
    backoff: float = 0.1  # seconds before the first retry; doubles, with jitter, up to 5 s
    sleep: Callable[[float], None] = time.sleep
    retried: int = 0  # entries sent again after a partial failure

    def send_all(
        self, bodies: Iterable[tuple[str, str]], on_sent: Callable[[str, str], None]
    ) -> None:
        """Send (key, body) pairs; `on_sent(key, sqs message id)` for each one SQS accepted.
        Raises QueueError when SQS refuses one for good or keeps failing."""
        call: list[tuple[str, str]] = []
        size = 0
        for key, body in bodies:
            body_size = utf8_size(body)
            if call and (len(call) == SQS_BATCH_ENTRIES or size + body_size > self.max_bytes):
                self._send(call, on_sent)
                call, size = [], 0
            call.append((key, body))
            size += body_size
        if call:
            self._send(call, on_sent)

    def _send(self, call: list[tuple[str, str]], on_sent: Callable[[str, str], None]) -> None:
        pending = {str(i): entry for i, entry in enumerate(call)}
        failed: list[Any] = []
        for attempt in range(1, self.attempts + 1):
            entries: Any = [{"Id": i, "MessageBody": body} for i, (_, body) in pending.items()]
            with aws.errors(f"cannot send to {self.queue_url}", QueueError):
                response = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            for ok in response.get("Successful", []):
                on_sent(pending[ok["Id"]][0], ok["MessageId"])
            failed = list(response.get("Failed", []))
            for failure in failed:
                if failure.get("SenderFault"):
                    key = pending[failure["Id"]][0]
                    raise QueueError(
                        f"{self.queue_url} refused message {key}: "
                        f"{failure.get('Code')}: {failure.get('Message', '')}"
                    )
            if not failed:
                return
            pending = {f["Id"]: pending[f["Id"]] for f in failed}
            if attempt < self.attempts:
                self.retried += len(pending)
                self.sleep(min(5.0, self.backoff * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0))
        codes = Counter(str(f.get("Code")) for f in failed)
        raise QueueError(
            f"{len(pending)} messages still failing after {self.attempts} attempts "
            f"({', '.join(f'{code} x{n}' for code, n in codes.items())})"
        )
