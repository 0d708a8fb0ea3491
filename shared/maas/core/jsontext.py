"""JSON from an untrusted source (a request body, a queue message, a file, a store object):
every way `json.loads` can fail - malformed text, nesting deep enough to exhaust the stack,
an integer too long to convert, the non-JSON constants NaN and Infinity - is one
InvalidJson with a short reason, never a RecursionError or a bare ValueError."""

from __future__ import annotations

import json
from typing import Any

from maas.errors import InvalidJson

MAX_INTEGER_DIGITS = 100  # far beyond any count or id; Python refuses past 4,300 anyway
MAX_DEPTH = 64  # requests and messages are two levels deep


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise ValueError(f"a number has more than {MAX_INTEGER_DIGITS} digits")
    return int(text)


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def loads(text: str | bytes, what: str = "the body") -> Any:
    """Parse JSON, or raise InvalidJson naming `what` and the reason."""
    try:
        value = json.loads(text, parse_int=_integer, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise InvalidJson(f"{what} is not valid JSON: {exc.msg} (at character {exc.pos})") from None
    except RecursionError:
        raise InvalidJson(f"{what} is not usable JSON: nested too deeply") from None
    except UnicodeDecodeError:
        raise InvalidJson(f"{what} is not UTF-8 encoded JSON") from None
    except ValueError as exc:
        raise InvalidJson(f"{what} is not usable JSON: {exc}") from None
    if _depth(value) > MAX_DEPTH:
        raise InvalidJson(f"{what} is not usable JSON: nested more than {MAX_DEPTH} levels")
    return value
