"""Safe, bounded snapshots of arbitrary Python values (local variables, extras, contexts).

Whatever the value, a snapshot never raises and stays small: strings are cut before they are
copied, containers are cut to ``MAX_BREADTH`` items and ``MAX_DEPTH`` levels, cycles end at the
depth limit, and a ``__repr__`` that raises or recurses yields a placeholder.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_DEPTH = 5
MAX_BREADTH = 10
DEFAULT_MAX_LENGTH = 1024

_SEQUENCES = (list, tuple, set, frozenset, deque)


def cut(text: str, limit: int) -> str:
    """``text`` shortened to at most ``limit`` characters, marked with ``...`` when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 3, 0)] + "..."


def safe_repr(value: Any, limit: int = DEFAULT_MAX_LENGTH) -> str:
    """``repr(value)``, bounded, and never raising."""
    try:
        if isinstance(value, str):
            # Cut before repr so a 10 MB string is never copied whole.
            return cut(repr(value[: limit + 1]), limit)
        if isinstance(value, (bytes, bytearray)):
            return cut(repr(value[: limit + 1]), limit)
        return cut(repr(value), limit)
    except RecursionError:
        return "<recursion in __repr__>"
    except Exception as exc:
        return f"<{type(value).__name__} object; repr failed: {type(exc).__name__}>"


def snapshot_locals(
    variables: Mapping[str, Any], limit: int = DEFAULT_MAX_LENGTH
) -> dict[str, Any]:
    """A frame's local variables as JSON-ready data: scalars as reprs, containers as structure."""
    out: dict[str, Any] = {}
    for index, (name, value) in enumerate(variables.items()):
        if index >= 50:
            out["..."] = f"<{len(variables) - 50} more>"
            break
        out[name] = _repr_tree(value, 1, limit)
    return out


def _repr_tree(value: Any, depth: int, limit: int) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return safe_repr(value, limit)
    if depth >= MAX_DEPTH:
        return safe_repr(value, limit)
    try:
        if isinstance(value, dict):
            return _mapping(value, depth, limit)
        if isinstance(value, _SEQUENCES):
            return _sequence(value, depth, limit)
    except Exception:
        pass
    return safe_repr(value, limit)


def _mapping(value: Mapping[Any, Any], depth: int, limit: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for index, (key, item) in enumerate(value.items()):
        if index >= MAX_BREADTH:
            out["..."] = f"<{len(value) - MAX_BREADTH} more>"
            break
        name = key if isinstance(key, str) else safe_repr(key, 200)
        out[cut(name, 200)] = _repr_tree(item, depth + 1, limit)
    return out


def _sequence(value: Any, depth: int, limit: int) -> list[Any]:
    out: list[Any] = []
    for index, item in enumerate(value):
        if index >= MAX_BREADTH:
            out.append(f"<{len(value) - MAX_BREADTH} more>")
            break
        out.append(_repr_tree(item, depth + 1, limit))
    return out


def to_jsonable(value: Any, limit: int = DEFAULT_MAX_LENGTH, depth: int = 1) -> Any:
    """Data given by the app (extras, contexts, breadcrumb data) made JSON-safe and bounded.

    JSON scalars pass through (strings cut to ``limit``); containers are walked to ``MAX_DEPTH``;
    anything else becomes its safe repr.
    """
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return cut(value, limit)
    if depth >= MAX_DEPTH + 2:
        return safe_repr(value, limit)
    try:
        if isinstance(value, Mapping):
            return {
                (k if isinstance(k, str) else safe_repr(k, 200)): to_jsonable(v, limit, depth + 1)
                for k, v in _first(value.items(), 200)
            }
        if isinstance(value, _SEQUENCES):
            return [to_jsonable(v, limit, depth + 1) for v in _first(value, 200)]
    except Exception:
        pass
    return safe_repr(value, limit)


def _first(items: Any, count: int) -> list[Any]:
    out = []
    for index, item in enumerate(items):
        if index >= count:
            break
        out.append(item)
    return out
