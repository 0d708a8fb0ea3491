"""Where an alias sends a request: its version, a weighted canary, and a shadow.

An alias points at one version. It may also send a share of its traffic to a canary version,
and name a shadow version that sees a sample of the traffic after the answer is computed (its
answers are compared, never returned). Which requests go where is decided by a routing key
(a request id, or a key the caller sets): hashed with the alias, so one key always meets the
same version for as long as the split stays, and the shares hold over many keys.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from maas.errors import InvalidInput
from maas.store.refs import check_version, is_version

_SHARE_RE = re.compile(r"(\d+(?:\.\d+)?)(%?)")


@dataclass(frozen=True)
class Split:
    """Another version and the share of routing keys it gets (0 < share <= 1)."""

    version: str
    share: float

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "share": self.share}

    @classmethod
    def parse(cls, spec: str, option: str, default_share: float | None = None) -> Split:
        """`V=SHARE` (SHARE: `10%` or `0.1`), or `V` where a default share exists."""
        version, _, share = spec.partition("=")
        if not share and default_share is None:
            raise InvalidInput(f"{option} {spec!r}: write VERSION=SHARE, e.g. 4=10%")
        check_version(version)
        value = parse_share(share, option) if share else float(default_share or 0)
        if option == "--canary" and value >= 1:
            raise InvalidInput("--canary: a 100% canary is a promote: use --version")
        return cls(version, value)


def parse_share(text: str, option: str) -> float:
    match = _SHARE_RE.fullmatch(text.strip())
    if not match:
        raise InvalidInput(f"{option}: {text!r} is not a share such as 10% or 0.1")
    value = float(match.group(1)) / (100 if match.group(2) else 1)
    if not 0 < value <= 1:
        raise InvalidInput(f"{option}: the share must be above 0 and at most 100% (got {text})")
    return value


@dataclass(frozen=True)
class Route:
    version: str
    canary: Split | None = None
    shadow: Split | None = None

    @property
    def versions(self) -> set[str]:
        """Every version this route can invoke."""
        return {self.version} | {s.version for s in (self.canary, self.shadow) if s is not None}

    def choose(self, key: str | None, scope: str) -> str:
        """The version that answers a routing key (no key: the alias's own version)."""
        if self.canary is None or key is None:
            return self.version
        return (
            self.canary.version
            if position(key, scope, "canary") < self.canary.share
            else (self.version)
        )

    def shadowed(self, key: str | None, scope: str) -> str | None:
        """The shadow version that also sees this key's request, if it is in the sample."""
        if self.shadow is None or key is None:
            return None
        return self.shadow.version if position(key, scope, "shadow") < self.shadow.share else None

    def to_pointer(self) -> dict[str, Any]:
        pointer: dict[str, Any] = {"version": self.version}
        if self.canary:
            pointer["canary"] = self.canary.to_dict()
        if self.shadow:
            pointer["shadow"] = self.shadow.to_dict()
        return pointer

    @classmethod
    def from_pointer(cls, version: str, pointer: dict[str, Any]) -> Route:
        """From an alias's pointer; a malformed split is ignored (the version still serves)."""
        return cls(version, _split(pointer.get("canary")), _split(pointer.get("shadow")))


def _split(value: Any) -> Split | None:
    if not isinstance(value, dict):
        return None
    version, share = value.get("version"), value.get("share")
    if not is_version(version) or not isinstance(share, (int, float)) or not 0 < share <= 1:
        return None
    return Split(str(version), float(share))


def position(key: str, scope: str, purpose: str) -> float:
    """A routing key's place in [0, 1) for one alias and purpose: uniform over keys, stable."""
    digest = hashlib.sha256(f"{purpose}\0{scope}\0{key}".encode("utf-8", "surrogatepass"))
    return int.from_bytes(digest.digest()[:8], "big") / 2**64
