"""Names of models, versions and aliases, and references to them: `name`, `name@alias`,
`name:version`.

A name becomes a path segment on disk and a key segment on S3, so the rules are strict and
checked with a full match (a `$` anchor would let a trailing newline through).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from maas.errors import InvalidModelRef

DEFAULT_ALIAS = "production"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
VERSION_RE = re.compile(r"[1-9][0-9]{0,8}")
# `name`, `name@alias` or `name:version`, as a JSON-schema pattern (the OpenAPI document's)
REFERENCE_PATTERN = rf"^{NAME_RE.pattern}(@{NAME_RE.pattern}|:{VERSION_RE.pattern})?$"
NAME_PATTERN = rf"^{NAME_RE.pattern}$"  # a model or alias name alone
# A version number, or an alias name that is not all digits (digits alone mean a version).
VERSION_OR_ALIAS_PATTERN = (
    rf"^({VERSION_RE.pattern}|[A-Za-z][A-Za-z0-9._-]{{0,127}}|[0-9]+[A-Za-z._-][A-Za-z0-9._-]*)$"
)
_RULE = "use letters, digits, '.', '_' and '-', starting with a letter or digit (at most 128)"


def is_name(value: object) -> bool:
    return isinstance(value, str) and NAME_RE.fullmatch(value) is not None


def is_version(value: object) -> bool:
    return isinstance(value, str) and VERSION_RE.fullmatch(value) is not None


def check_name(value: str, what: str = "name") -> str:
    if not is_name(value):
        raise InvalidModelRef(f"invalid {what} {value!r}: {_RULE}")
    return value


def check_version(value: str) -> str:
    if not is_version(value):
        raise InvalidModelRef(f"invalid version {value!r}: versions are 1, 2, …")
    return value


@dataclass(frozen=True)
class ModelRef:
    """`name`, `name@alias` or `name:version`. A bare name is resolved by the reader: the
    store and the functions take its `production` alias when it exists, else its latest
    version (`ModelStore.resolve`)."""

    name: str
    alias: str | None = None
    version: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        name, alias, version = text, None, None
        if "@" in text:
            name, alias = text.split("@", 1)
        elif ":" in text:
            name, version = text.split(":", 1)
        if not is_name(name):
            raise InvalidModelRef(f"invalid model name {name!r}: {_RULE}")
        if alias is not None and not is_name(alias):
            raise InvalidModelRef(f"invalid alias {alias!r} in {text!r}: {_RULE}")
        if version is not None and not is_version(version):
            raise InvalidModelRef(f"invalid version {version!r} in {text!r}: versions are 1, 2, …")
        return cls(name, alias, version)

    def __str__(self) -> str:
        if self.version:
            return f"{self.name}:{self.version}"
        return f"{self.name}@{self.alias}" if self.alias else self.name


def similar(wanted: str, known: list[str], cutoff: float = 0.6) -> list[str]:
    """The known names a person who typed `wanted` may have meant: close spellings
    (difflib), and names it abbreviates ('prod' for 'production'), best first, at most 3."""
    close = difflib.get_close_matches(wanted, known, n=3, cutoff=cutoff)
    longer = sorted(k for k in known if len(wanted) >= 2 and k.startswith(wanted) and k != wanted)
    return list(dict.fromkeys([*close, *longer]))[:3]
