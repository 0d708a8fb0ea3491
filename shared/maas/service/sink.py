"""The queue function's durable results, on the store's backends (S3 in AWS, a directory
locally)::

    results/<id>.json    one per message id, written once ("if none match"): a redelivered
                         message finds its result there and never writes a second one
    failures/<key>.json  the latest failure of a message (key: its id, or the SQS message id
                         when the body had no readable id); overwritten on each attempt

A result supersedes a failure: a message that failed once and then succeeded has both, and
the result is what counts. Results hold labels and probabilities, never the texts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from maas.errors import NotFound, VersionConflict
from maas.store.backends import backend_for


class ResultSink:
    def __init__(self, uri: str | Path) -> None:
        """`s3://bucket/prefix`, `file:///path` or a directory."""
        self.backend = backend_for(uri)

    @property
    def uri(self) -> str:
        return self.backend.uri

    def put_result(self, message_id: str, doc: dict[str, Any]) -> bool:
        """Store a message's result unless it has one already. True when this call wrote it,
        False when it existed (a redelivery: the first result stands). Raises StoreError."""
        try:
            self.backend.write(f"results/{message_id}.json", _dumps(doc), exclusive=True)
        except VersionConflict:
            return False
        return True

    def put_failure(self, key: str, doc: dict[str, Any]) -> None:
        """Record why a message failed (the latest attempt wins). Raises StoreError."""
        self.backend.write(f"failures/{key}.json", _dumps(doc))

    def get_result(self, message_id: str) -> dict[str, Any] | None:
        return self._get(f"results/{message_id}.json")

    def get_failure(self, key: str) -> dict[str, Any] | None:
        return self._get(f"failures/{key}.json")

    def list_results(self, prefix: str = "") -> list[str]:
        """Ids that have a result, those starting with `prefix` only."""
        return self._list("results", prefix)

    def list_failures(self, prefix: str = "") -> list[str]:
        return self._list("failures", prefix)

    def _get(self, key: str) -> dict[str, Any] | None:
        try:
            doc: dict[str, Any] = json.loads(self.backend.read(key))
        except NotFound:
            return None
        return doc

    def _list(self, folder: str, prefix: str) -> list[str]:
        return [
            name[: -len(".json")]
            for name in self.backend.children(folder)
            if name.endswith(".json") and name.startswith(prefix)
        ]


def _dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
