"""Every limit on what a caller may send, defined once, and the one check of a text.

The request schemas, the queue function, `maas batch submit`'s packing, the CLI and the
template's parameter defaults all use these numbers (a test compares the template with them).
A deployment may lower or raise them per function through its settings (`MAAS_MAX_TEXTS`,
`MAAS_MAX_TEXT_CHARS`); the defaults live here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from maas.errors import ErrorCode

MAX_TEXT_CHARS = 10_000
"""Longest text accepted, in characters (HTTP, queue and CLI alike)."""

MAX_TEXTS_PER_REQUEST = 64
"""Most texts in one HTTP predict request: keeps a request within API Gateway's 30 s."""

MAX_TEXTS_PER_MESSAGE = 1000
"""Most texts in one queue message, the number `maas batch submit` packs up to."""

SQS_MAX_MESSAGE_BYTES = 262_144
"""256 KiB: SQS's classic limit per message and per SendMessageBatch call."""

SQS_BATCH_ENTRIES = 10
"""SQS's most entries in one batch call (send, delete, change visibility) and receive."""

MAX_ID_CHARS = 256
"""Longest message, batch or text id."""

MAX_EXPLAINED_TEXTS_PER_REQUEST = 16
"""Most texts in one HTTP request with `"explain": true`: each costs up to
`EXPLAIN_MAX_INVOKES` invokes instead of one."""

MAX_EXPLAINED_TEXTS_PER_MESSAGE = 100
"""Most texts in one queue message with `"explain": true`."""

EXPLAIN_MAX_INVOKES = 128
"""Invokes one explained text may cost (maas.core.explain): longer texts are explained by
groups of tokens."""


@dataclass(frozen=True)
class Limits:
    """The limits one function enforces: texts per request or message, characters per text,
    explained texts per request or message and invokes per explained text."""

    max_texts: int = MAX_TEXTS_PER_REQUEST
    max_text_chars: int = MAX_TEXT_CHARS
    max_explained_texts: int = MAX_EXPLAINED_TEXTS_PER_REQUEST
    explain_max_invokes: int = EXPLAIN_MAX_INVOKES

    def __post_init__(self) -> None:
        if min(self.max_texts, self.max_text_chars, self.max_explained_texts) < 1:
            raise ValueError("limits must be positive")
        if self.explain_max_invokes < 3:
            raise ValueError("an explained text needs at least 3 invokes")

    @property
    def max_body_bytes(self) -> int:
        """The largest body a valid request can have: every text at its longest, each
        character JSON-escaped (`\\uXXXX`, 6 bytes), with room for ids and the rest. Larger
        bodies are refused before they are parsed, so no request costs more than that."""
        return self.max_texts * (self.max_text_chars * 6 + 2 * MAX_ID_CHARS + 16) + 64 * 1024


DEFAULT_LIMITS = Limits()


# What "blank" means, spelled out: Python's whitespace (str.isspace) and the byte-order mark.
# Written as one explicit class so that the OpenAPI document's pattern (ECMAScript regex) and
# this check (Python) cannot disagree about characters such as U+001D or U+FEFF.
WHITESPACE = (
    "\t\n\u000b\u000c\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029"
    "\u202f\u205f\u3000\ufeff"
)
NOT_BLANK_PATTERN = f"[^{WHITESPACE}]"  # a text must contain one such character
_BLANK = re.compile(f"[{WHITESPACE}]*")


@dataclass(frozen=True)
class TextProblem:
    """Why a text cannot be classified: a stable code, the message's predicate and its facts."""

    code: ErrorCode
    message: str  # reads after the text's name: "texts[3] has 12000 characters; ..."
    length: int | None = None
    limit: int | None = None


def check_text(text: str, max_chars: int = MAX_TEXT_CHARS) -> TextProblem | None:
    """The reason a text would be refused, or None. HTTP validation, the queue function, the
    CLI and `maas batch submit` (which does not send what the function would refuse) all ask
    this one function, so they always agree."""
    if len(text) > max_chars:
        return TextProblem(
            ErrorCode.TEXT_TOO_LONG,
            f"has {len(text)} characters; the limit is {max_chars}",
            length=len(text),
            limit=max_chars,
        )
    if _BLANK.fullmatch(text):
        return TextProblem(ErrorCode.EMPTY_TEXT, "is empty or only whitespace")
    return None
