"""Size limits for event fields: string limits and databag trimming (protocol notes §5.8).

Trimming is routine, so it is not reported as a processing error: a cut string ends in ``...``
and a trimmed databag simply holds less.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final, NamedTuple

ELLIPSIS: Final = "..."


class Limit(NamedTuple):
    """A string limit: a string longer than ``soft + allowance`` is cut to ``soft`` characters."""

    soft: int
    allowance: int = 0


MESSAGE: Final = Limit(8192, 200)
SYMBOL: Final = Limit(256, 20)
PATH: Final = Limit(256, 40)
SUMMARY: Final = Limit(1024, 100)
ENUMLIKE: Final = Limit(128)
SHORT: Final = Limit(200)  # culprit, transaction, tag keys and tag values
LOGGER: Final = Limit(64)
EMAIL: Final = Limit(75)
ENVIRONMENT: Final = Limit(64)  # and dist
SERVER_NAME: Final = Limit(256)
RELEASE_MAX: Final = 200  # releases are identifiers: an over-long one is invalid, never cut


def trim_string(value: str, limit: Limit) -> str:
    """Return ``value``, or its first characters ending in ``...`` when it is over the limit."""
    if len(value) <= limit.soft + limit.allowance:
        return value
    return value[: limit.soft - len(ELLIPSIS)] + ELLIPSIS


class Bag(NamedTuple):
    """A databag's bounds: containers deeper than ``depth`` become JSON strings, and values
    beyond ``size`` characters of JSON are dropped."""

    depth: int
    size: int


SMALL: Final = Bag(3, 1024)
MEDIUM: Final = Bag(5, 2048)  # frame.vars, breadcrumb.data, logentry.params
LARGE: Final = Bag(7, 8192)  # modules, contexts (each), request data
LARGER: Final = Bag(7, 16384)
MASSIVE: Final = Bag(7, 262144)  # extra

SKIP: Final = object()  # a value that does not fit or is not JSON: leave it out


class _Budget:
    __slots__ = ("max_depth", "remaining")

    def __init__(self, bag: Bag) -> None:
        self.max_depth = bag.depth
        self.remaining = bag.size


def trim_databag(value: Any, bag: Bag) -> Any:
    """Return a JSON-safe copy of ``value`` within ``bag``'s bounds, or ``SKIP`` if none of it
    fits. Keys whose value is null are left out (null means absent); nulls in lists stay, since
    a position can matter (``logentry.params``)."""
    return _trim(value, 0, _Budget(bag))


def _trim(value: Any, depth: int, budget: _Budget) -> Any:
    kind = type(value)
    if kind is str:
        return _take_string(value, budget)
    if kind is dict or kind is list:
        if depth >= budget.max_depth:
            return _take_string(_to_json(value), budget)
        if kind is dict:
            return _trim_dict(value, depth + 1, budget)
        return _trim_list(value, depth + 1, budget)
    if value is None or kind is bool:
        return _take_scalar(value, 5, budget)
    if kind is int:
        # bit_length, not str(): converting a huge int to text is slow (and limited).
        return _take_scalar(value, value.bit_length() // 3 + 2, budget)
    if kind is float:
        return _take_scalar(value, 20, budget) if math.isfinite(value) else SKIP
    return SKIP  # not a JSON value


def _trim_dict(value: dict[Any, Any], depth: int, budget: _Budget) -> dict[str, Any]:
    budget.remaining -= 2
    out: dict[str, Any] = {}
    for key, item in value.items():
        if item is None:
            continue
        name = key if type(key) is str else str(key)
        budget.remaining -= len(name) + 4
        if budget.remaining <= 0:
            break
        if type(item) is str and len(item) + 2 <= budget.remaining:  # the common case, inlined
            budget.remaining -= len(item) + 2
            out[name] = item
            continue
        trimmed = _trim(item, depth, budget)
        if trimmed is not SKIP:
            out[name] = trimmed
    return out


def _trim_list(value: list[Any], depth: int, budget: _Budget) -> list[Any]:
    budget.remaining -= 2
    out: list[Any] = []
    for item in value:
        if budget.remaining <= 0:
            break
        budget.remaining -= 1
        if type(item) is str and len(item) + 2 <= budget.remaining:  # the common case, inlined
            budget.remaining -= len(item) + 2
            out.append(item)
            continue
        trimmed = _trim(item, depth, budget)
        if trimmed is not SKIP:
            out.append(trimmed)
    return out


def _take_string(value: str, budget: _Budget) -> Any:
    room = budget.remaining - 2
    if len(value) > room:
        if room < len(ELLIPSIS) + 1:
            budget.remaining = 0
            return SKIP
        value = value[: room - len(ELLIPSIS)] + ELLIPSIS
    budget.remaining -= len(value) + 2
    return value


def _take_scalar(value: Any, cost: int, budget: _Budget) -> Any:
    if cost > budget.remaining:
        budget.remaining = 0
        return SKIP
    budget.remaining -= cost
    return value


def _to_json(value: Any) -> str:
    # Too-deep content is kept readable as text; the budget then cuts the text.
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=repr)
    except (ValueError, RecursionError):
        return "[unrepresentable]"
