"""`maas batch work`: the queue function on a laptop, fed from a real SQS API (moto or AWS)
the way Lambda's event source mapping feeds it: batches of up to `batch_size` messages, the
messages the function names in `batchItemFailures` left for redelivery when their visibility
timeout expires, the rest deleted, and the queue's own redrive policy moving a message to the
dead-letter queue after its last allowed receive. So `maas batch submit`, `work`, `status`
and `results` run end to end on one machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from maas.client.sqs import queue_attributes, sqs_client
from maas.local.event_source import EventSource
from maas.service.queue import QueueFunction
from maas.service.settings import ServiceSettings

DEFAULT_BATCH_SIZE = 25  # the template's BatchSize


@dataclass
class WorkReport:
    invocations: int = 0
    messages: int = 0
    failed: int = 0  # message deliveries reported as failed (each retried, then dead-lettered)
    errors: list[str] = field(default_factory=list)  # invocations that failed as a whole

    @property
    def succeeded(self) -> int:
        return self.messages - self.failed


def work(
    queue_url: str,
    settings: ServiceSettings,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    follow: bool = False,
    idle_seconds: float = 1.0,
    progress: Callable[[WorkReport], None] | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> WorkReport:
    """Consume the queue with the real queue function until it holds nothing visible, in
    flight or delayed (retries included), or, with `follow`, until `stop()` says so."""
    client = sqs_client(queue_url)
    attributes = queue_attributes(client, queue_url)  # a wrong URL fails here, before work
    timeout = float(attributes.get("VisibilityTimeout", "30")) / 6  # as the template sets it
    function = QueueFunction(settings)
    source = EventSource(
        queue_url,
        function.handler,
        batch_size=batch_size,
        client=client,
        function_name="maas-batch-work",
        timeout_seconds=max(1.0, timeout),
    )
    report = WorkReport()
    while not stop():
        invocation = source.poll()
        if invocation is None:
            if not follow and source.backlog() == 0:
                break
            time.sleep(idle_seconds)
            continue
        report.invocations += 1
        report.messages += len(invocation.message_ids)
        report.failed += len(invocation.failed)
        if invocation.error:
            report.errors.append(invocation.error)
        if progress:
            progress(report)
    return report
