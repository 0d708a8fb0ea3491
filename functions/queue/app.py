"""Lambda entry point of the queue function (SQS event source, partial batch responses).

The app is `maas.service.queue.QueueFunction` (in the layer); this module builds it once per
cold start, from the function's environment, which also loads the default model.
"""

from maas.service.queue import QueueFunction

function = QueueFunction.from_env()
handler = function.handler
