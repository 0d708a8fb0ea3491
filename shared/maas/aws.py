"""The AWS plumbing both sides share: one botocore session per process, and AWS's errors in
maas's terms (written once for S3 and SQS).

botocore honours AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>, so moto server, MinIO or
any compatible endpoint works everywhere a client is made here. Nothing imports boto3 or
botocore before a client is needed: a function on a local store never pays for them.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

from maas.errors import MaasError, NotFound, StoreError, VersionConflict

_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
_CONFLICT = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})


@functools.cache
def botocore_session() -> Any:
    """One botocore session per process, as boto3's default session: its clients (the model
    store's, the results sink's, SQS's) share the parsed service models instead of each
    loading them."""
    import botocore.session

    return botocore.session.get_session()


def client(service: str, **config: Any) -> Any:
    """A botocore client from the shared session. `config`: botocore Config options."""
    if not config:
        return botocore_session().create_client(service)
    from botocore.config import Config

    return botocore_session().create_client(service, config=Config(**config))


@contextlib.contextmanager
def errors(what: str, unavailable: type[MaasError] = StoreError) -> Iterator[None]:
    """Run AWS calls, translating their errors: a missing key or bucket is NotFound, a failed
    conditional write VersionConflict, anything else `unavailable` (StoreError, QueueError)
    with `what` ("cannot read s3://…") and AWS's own reason."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in _NOT_FOUND:
            raise NotFound(what) from exc
        if code in _CONFLICT:
            raise VersionConflict(f"{what}: it exists already") from exc
        raise unavailable(f"{what}: {code or 'error'}: {error.get('Message', exc)}") from None
    except S3UploadFailedError as exc:
        raise unavailable(f"{what}: {exc}") from None
    except BotoCoreError as exc:
        raise unavailable(f"{what}: cannot reach the endpoint: {exc}") from None
