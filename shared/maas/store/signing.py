"""Signed versions: a version's manifest cannot be swapped, relabelled or re-hashed unseen.

At publish, the store signs a short statement - the model's name, the version and the sha256
of the manifest's exact bytes - and writes it as `manifest.sig` next to the manifest (before
it, write-once). A reader that has a key verifies the statement and its signature before it
trusts anything the manifest says; every file is then checked against the manifest's sha256.

Keys (`MAAS_SIGNING_KEY`, `maas publish --signing-key`):

    kms:<key id, ARN or alias>   AWS KMS asymmetric key (ECC_NIST_P256, SIGN_VERIFY): the
                                 publisher needs kms:Sign, the functions only kms:Verify, and
                                 no secret ever leaves KMS (what template.yaml deploys)
    file:<path> or a path        HMAC-SHA256 with the secret in that file (32+ bytes); for a
                                 local store, or where one process both publishes and serves
    none                         no signatures: versions are written unsigned and read unchecked

The default is a key file in the user's configuration directory (created by the first
publish, mode 0600), so a local store is signed out of the box.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from maas import aws
from maas.core import jsontext
from maas.errors import ConfigurationError, IntegrityError, MaasError, StoreError

FORMAT = "maas.signature/1"
SIGNATURE = "manifest.sig"
NO_SIGNING = "none"
MIN_SECRET_BYTES = 32


class Signer(Protocol):
    key: str  # which key, for messages and the signature file (never the secret)
    algorithm: str

    def sign(self, message: bytes) -> bytes: ...
    def verify(self, message: bytes, signature: bytes) -> bool: ...


class HmacKey:
    """HMAC-SHA256 with a secret read from a file."""

    algorithm = "HMAC_SHA_256"

    def __init__(self, path: Path, create: bool = False) -> None:
        self.path = path
        if create and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
        try:
            secret = path.read_bytes().strip()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the signing key {path}: {exc.strerror or exc} (set "
                "MAAS_SIGNING_KEY to a key file, kms:<key>, or none)"
            ) from None
        if len(secret) < MIN_SECRET_BYTES:
            raise ConfigurationError(
                f"the signing key {path} holds {len(secret)} bytes; use at least "
                f"{MIN_SECRET_BYTES} random bytes"
            )
        self._secret = secret
        self.key = f"hmac:{hashlib.sha256(secret).hexdigest()[:16]}"

    def sign(self, message: bytes) -> bytes:
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def verify(self, message: bytes, signature: bytes) -> bool:
        return hmac.compare_digest(self.sign(message), signature)


class KmsKey:
    """An AWS KMS asymmetric signing key: Sign and Verify are KMS calls."""

    algorithm = "ECDSA_SHA_256"

    def __init__(self, key_id: str) -> None:
        self.key = f"kms:{key_id}"
        self.key_id = key_id
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws.client("kms")
        return self._client

    def sign(self, message: bytes) -> bytes:
        with aws.errors(f"cannot sign with {self.key}"):
            response = self.client.sign(
                KeyId=self.key_id,
                Message=message,
                MessageType="RAW",
                SigningAlgorithm=self.algorithm,
            )
        signature: bytes = response["Signature"]
        return signature

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            with aws.errors(f"cannot verify with {self.key}"):
                response = self.client.verify(
                    KeyId=self.key_id,
                    Message=message,
                    MessageType="RAW",
                    Signature=signature,
                    SigningAlgorithm=self.algorithm,
                )
        except StoreError as exc:
            # KMS answers a signature that does not verify with an error, not with False
            if "KMSInvalidSignatureException" in exc.message:
                return False
            raise
        return bool(response.get("SignatureValid"))


def default_key_path(env: Mapping[str, str]) -> Path:
    """Where the default key lives: `$XDG_CONFIG_HOME/maas/signing.key`."""
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "maas" / "signing.key"


def open_signer(spec: str, *, create: bool = False) -> Signer | None:
    """The key a spec names (see the module's docstring); None for `none`. `create`: make the
    key file if it does not exist (publishing does, serving does not)."""
    spec = spec.strip()
    if spec == NO_SIGNING:
        return None
    if spec.startswith("kms:"):
        key_id = spec.removeprefix("kms:")
        if not key_id:
            raise ConfigurationError("kms: names no key (use kms:<key id, ARN or alias>)")
        return KmsKey(key_id)
    path = Path(spec.removeprefix("file:")).expanduser()
    return HmacKey(path, create=create)


# --------------------------------------------------------------------------- statements
@dataclass(frozen=True)
class Statement:
    """What a signature vouches for."""

    name: str
    version: str
    manifest_sha256: str

    def to_bytes(self) -> bytes:
        doc = {"format": FORMAT, "name": self.name, "version": self.version}
        doc["manifest_sha256"] = self.manifest_sha256
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def signature_document(signer: Signer, statement: Statement) -> bytes:
    doc = {
        "format": FORMAT,
        "statement": json.loads(statement.to_bytes()),
        "algorithm": signer.algorithm,
        "key": signer.key,
        "signature": base64.b64encode(signer.sign(statement.to_bytes())).decode(),
    }
    return json.dumps(doc, indent=1, sort_keys=True).encode()


def verify_signature(
    signer: Signer, document: bytes | None, name: str, version: str, manifest: bytes
) -> None:
    """Refuse a version whose signature is missing, names another version or manifest, was
    made with another key, or does not verify."""
    where = f"{name}:{version}"
    if document is None:
        raise IntegrityError(
            f"{where} is not signed; refusing to load it (publish it with a signing key, or "
            "set MAAS_SIGNING_KEY=none where versions are not signed)",
            reason="unsigned",
        )
    try:
        doc = jsontext.loads(document, f"the signature of {where}")
        statement = doc["statement"]
        claimed = Statement(
            str(statement["name"]), str(statement["version"]), str(statement["manifest_sha256"])
        )
        signature = base64.b64decode(doc["signature"], validate=True)
        algorithm, key = str(doc["algorithm"]), str(doc["key"])
    except (MaasError, KeyError, TypeError, ValueError) as exc:
        reason = exc.message if isinstance(exc, MaasError) else f"malformed ({exc})"
        raise IntegrityError(f"{where}: unusable signature: {reason}", reason="malformed") from None
    actual = Statement(name, version, hashlib.sha256(manifest).hexdigest())
    if claimed != actual:
        raise IntegrityError(
            f"{where}: the signature vouches for another manifest or version; the manifest "
            "was changed after it was published - refusing to load it",
            reason="statement_mismatch",
        )
    if algorithm != signer.algorithm or key != signer.key:
        raise IntegrityError(
            f"{where} is signed with {key} ({algorithm}); this reader trusts {signer.key}",
            reason="other_key",
        )
    if not signer.verify(actual.to_bytes(), signature):
        raise IntegrityError(
            f"{where}: the signature does not verify; refusing to load it",
            reason="bad_signature",
        )
