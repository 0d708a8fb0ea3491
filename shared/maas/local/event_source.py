"""A local stand-in for Lambda's SQS event source mapping: runs the queue function in process.

It does what the managed poller does, against a real SQS API (moto server in the tests and the
benchmark):

- receives up to `batch_size` messages (ReceiveMessage returns at most 10 a call) with their
  system attributes, ApproximateReceiveCount included;
- calls the handler once with them as a Lambda SQS event;
- deletes the messages the handler did not name in `batchItemFailures`, and none at all when the
  invocation failed (the handler raised, or a malformed response): those reappear when their
  visibility timeout expires, exactly as on AWS. After `maxReceiveCount` receives, SQS itself
  (the queue's RedrivePolicy) moves a message to the dead-letter queue.

Raise `FunctionTimeout` from inside the handler to simulate Lambda ending an invocation midway
(timeout, out of memory, a crash): whatever the handler wrote stays written, nothing is deleted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from maas.client.sqs import delete_messages, receive
from maas.core.limits import SQS_BATCH_ENTRIES
from maas.local.lambda_runtime import lambda_context

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

Handler = Callable[[dict[str, Any], Any], Any]


class FunctionTimeout(BaseException):
    """The invocation ended before the handler returned (a BaseException, so Powertools'
    per-record error handling cannot catch it, just as it cannot catch a killed process)."""


@dataclass
class Invocation:
    """One call of the handler: what it was given and what became of it."""

    message_ids: list[str]  # SQS message ids, in event order
    receive_counts: list[int]
    failed: list[str] = field(default_factory=list)  # SQS message ids left for redelivery
    error: str | None = None  # set when the whole invocation failed
    seconds: float = 0.0


class EventSource:
    def __init__(
        self,
        queue_url: str,
        handler: Handler,
        *,
        batch_size: int = 10,
        client: SQSClient | None = None,
        function_name: str = "maas-queue",
        timeout_seconds: float = 60.0,
        poll_interval: float = 0.05,
    ) -> None:
        if client is None:
            import boto3

            client = boto3.client("sqs")
        self.queue_url = queue_url
        self.handler = handler
        self.batch_size = batch_size
        self.client = client
        self.function_name = function_name
        self.timeout_seconds = timeout_seconds
        self.poll_interval = poll_interval
        self.invocations: list[Invocation] = []
        arn = client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        self.queue_arn = arn["Attributes"]["QueueArn"]
        self.region = self.queue_arn.split(":")[3]

    # -- one poll ---------------------------------------------------------------------------
    def poll(self, *, delete: bool = True) -> Invocation | None:
        """Receive one batch, invoke the handler, delete what succeeded. None: nothing visible.
        `delete=False` simulates a poller that lost its DeleteMessage calls: every message of
        the batch is delivered again after its visibility timeout, successes included."""
        messages = self._receive()
        if not messages:
            return None
        event = {"Records": [self._record(m) for m in messages]}
        invocation = Invocation(
            message_ids=[m["MessageId"] for m in messages],
            receive_counts=[int(m["Attributes"]["ApproximateReceiveCount"]) for m in messages],
        )
        started = time.perf_counter()
        try:
            response = self.handler(event, self._context())
            invocation.failed = _failed_items(response, invocation.message_ids)
        except (Exception, FunctionTimeout) as exc:
            invocation.error = f"{type(exc).__name__}: {exc}"
            invocation.failed = list(invocation.message_ids)
        invocation.seconds = time.perf_counter() - started
        failed = set(invocation.failed)
        if delete:
            self._delete([m for m in messages if m["MessageId"] not in failed])
        self.invocations.append(invocation)
        return invocation

    def drain(self, timeout: float = 60.0, *, stop_on_failure: bool = False) -> list[Invocation]:
        """Poll until the queue holds nothing visible, in flight or delayed (failed messages
        are retried as their visibility expires, until SQS dead-letters them).
        `stop_on_failure`: raise at the first failed message instead (a benchmark or a smoke
        run has no business waiting out visibility timeouts)."""
        deadline = time.monotonic() + timeout
        done: list[Invocation] = []
        while True:
            invocation = self.poll()
            if invocation is not None:
                done.append(invocation)
                if stop_on_failure and (invocation.failed or invocation.error):
                    raise RuntimeError(
                        f"{len(invocation.failed)} messages failed"
                        + (f": {invocation.error}" if invocation.error else "")
                    )
                continue
            if self.backlog() == 0:
                return done
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.queue_url} still holds {self.backlog()} messages")
            time.sleep(self.poll_interval)

    def backlog(self) -> int:
        """Messages visible, in flight or delayed."""
        names: Any = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        response = self.client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=names)
        attributes: dict[str, str] = dict(response["Attributes"].items())
        return sum(int(attributes.get(name, "0")) for name in names)

    # -- the pieces ---------------------------------------------------------------------------
    def _receive(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < self.batch_size:
            most = min(SQS_BATCH_ENTRIES, self.batch_size - len(messages))
            received = receive(
                self.client, self.queue_url, most=most, wait_seconds=0, visibility=None
            )
            if not received:
                break
            messages += received
        return messages

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": dict(message.get("Attributes", {})),
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    "binaryValue": value.get("BinaryValue"),
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": value["DataType"],
                }
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        }

    def _context(self) -> Any:
        return lambda_context(self.function_name, 1769, int(self.timeout_seconds * 1000))

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        delete_messages(self.client, self.queue_url, [m["ReceiptHandle"] for m in messages])


def _failed_items(response: Any, message_ids: list[str]) -> list[str]:
    """The message ids a partial batch response names. As on AWS, a response that names an
    unknown or empty id fails the whole batch; no response (or no list) means all succeeded."""
    if not isinstance(response, dict) or not response.get("batchItemFailures"):
        return []
    named = [item.get("itemIdentifier") for item in response["batchItemFailures"]]
    if any(not isinstance(item, str) or item not in message_ids for item in named):
        return list(message_ids)
    return [message_id for message_id in message_ids if message_id in set(named)]


# ------------------------------------------------------------------------------- set-up helpers
def create_queue(
    client: SQSClient, name: str, *, visibility_timeout: int = 30, max_receive_count: int = 5
) -> tuple[str, str]:
    """A queue with a dead-letter queue (`<name>-dlq`) and a redrive policy, as the template
    makes them; returns (queue URL, DLQ URL)."""
    dlq_url = client.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
    policy = {
        "deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"],
        "maxReceiveCount": str(max_receive_count),
    }
    queue_url = client.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps(policy),
        },
    )["QueueUrl"]
    return queue_url, dlq_url
