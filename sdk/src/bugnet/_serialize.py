"""Safe, bounded snapshots of arbitrary Python values (local variables, extras, contexts).

Whatever the value, a snapshot never raises and stays small: strings are cut before they are
copied, containers are cut to a breadth and a depth, a container met again on its own path
becomes ``"<cyclic>"``, a container at the depth limit becomes a short preview (never its whole
repr, which could be megabytes), a ``__repr__`` that raises or recurses yields a short stand-in text,
and each snapshot has a total text budget, so even a structure that shares one big object at
every level costs a bounded amount of work.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_DEPTH = 5
MAX_BREADTH = 10
MAX_LOCALS = 50
DEFAULT_MAX_LENGTH = 1024
# Text budgets, in multiples of the value length limit: one frame's locals, one piece of app data.
FRAME_BUDGET = 64
DATA_BUDGET = 256
DATA_BREADTH = 200
CYCLIC = "<cyclic>"
TRUNCATED = "<truncated>"

_SEQUENCES: tuple[type, ...] = (
    list, tuple, set, frozenset, deque, type({}.keys()), type({}.values()), type({}.items()),
)  # fmt: skip
_INF = float("inf")


def cut(text: str, limit: int) -> str:
    """``text`` shortened to at most ``limit`` characters, marked with ``...`` when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 3, 0)] + "..."


def safe_repr(value: Any, limit: int = DEFAULT_MAX_LENGTH) -> str:
    """``repr(value)``, bounded, and never raising."""
    try:
        if isinstance(value, (str, bytes, bytearray)):
            # Cut before repr so a 10 MB string is never copied whole.
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
    walker = _Walker(True, limit, MAX_DEPTH, MAX_BREADTH, FRAME_BUDGET * max(limit, 64))
    out: dict[str, Any] = {}
    for index, (name, value) in enumerate(variables.items()):
        if index >= MAX_LOCALS:
            out["..."] = f"<{len(variables) - MAX_LOCALS} more>"
            break
        out[name] = walker.walk(value, 1)
    return out


def to_jsonable(value: Any, limit: int = DEFAULT_MAX_LENGTH, depth: int = 1) -> Any:
    """Data given by the app (extras, contexts, breadcrumb data) made JSON-safe and bounded.

    JSON scalars pass through (strings cut to ``limit``; NaN, infinities and integers too big for
    JSON readers become strings); containers are walked to depth 7 and 200 items each; anything
    else becomes its safe repr. The result holds at most ``256 * limit`` characters of text.
    """
    walker = _Walker(False, limit, MAX_DEPTH + 2, DATA_BREADTH, DATA_BUDGET * max(limit, 64))
    return walker.walk(value, depth)


class _Walker:
    """One bounded walk: ``as_repr`` turns scalars into reprs (locals) or keeps them (data)."""

    __slots__ = ("as_repr", "breadth", "budget", "limit", "max_depth", "path")

    def __init__(self, as_repr: bool, limit: int, max_depth: int, breadth: int, budget: int):
        self.as_repr = as_repr
        self.limit = limit
        self.max_depth = max_depth
        self.breadth = breadth
        self.budget = budget
        self.path: set[int] = set()

    def text(self, value: str) -> str:
        self.budget -= len(value) + 2
        return value

    def walk(self, value: Any, depth: int) -> Any:
        if self.budget <= 0:
            return TRUNCATED
        kind = type(value)
        if kind is str:
            return self.text(
                safe_repr(value, self.limit) if self.as_repr else cut(value, self.limit)
            )
        if value is None or kind is bool or kind is int or kind is float:
            return self._scalar(value)
        is_mapping = isinstance(value, dict if self.as_repr else Mapping)
        if not is_mapping and not isinstance(value, _SEQUENCES):
            if not self.as_repr and isinstance(value, (str, bool, int, float)):
                return self._scalar(value)  # subclasses: IntEnum, str-based enums...
            return self.text(safe_repr(value, self.limit))
        if depth >= self.max_depth:
            return self.text(cut(preview(value), self.limit))
        key = id(value)
        if key in self.path:
            return self.text(CYCLIC)
        self.path.add(key)
        try:
            return self._mapping(value, depth) if is_mapping else self._sequence(value, depth)
        except Exception:
            return self.text(safe_repr(value, self.limit))
        finally:
            self.path.discard(key)

    def _scalar(self, value: Any) -> Any:
        if self.as_repr:
            return self.text(safe_repr(value, self.limit))
        self.budget -= 8
        if isinstance(value, str):
            return cut(value, self.limit)
        if isinstance(value, float) and (value != value or value in (_INF, -_INF)):
            return repr(float(value))  # JSON has no NaN or infinity
        if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
            return safe_repr(int(value), self.limit)  # beyond what JSON readers keep exactly
        return value

    def _mapping(self, value: Mapping[Any, Any], depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for index, (key, item) in enumerate(value.items()):
            if index >= self.breadth:
                out["..."] = _more(value, self.breadth)
                break
            if self.budget <= 0:
                out["..."] = TRUNCATED
                break
            name = key if isinstance(key, str) else safe_repr(key, 200)
            out[self.text(cut(name, 200))] = self.walk(item, depth + 1)
        return out

    def _sequence(self, value: Any, depth: int) -> list[Any]:
        out: list[Any] = []
        for index, item in enumerate(value):
            if index >= self.breadth:
                out.append(_more(value, self.breadth))
                break
            if self.budget <= 0:
                out.append(TRUNCATED)
                break
            out.append(self.walk(item, depth + 1))
        return out


def _more(value: Any, shown: int) -> str:
    try:
        return f"<{len(value) - shown} more>"
    except Exception:
        return "<more>"


def preview(value: Any, level: int = 2) -> str:
    """A short repr of a container: its first few items, two levels deep, whatever its size."""
    try:
        if isinstance(value, dict):
            if level <= 0:
                return "{...}" if value else "{}"
            pairs = _first(value.items(), 5)
            items = [f"{preview(k, 0)}: {preview(v, level - 1)}" for k, v in pairs]
            return _join("{", items, len(value), "}")
        if isinstance(value, _SEQUENCES):
            if isinstance(value, tuple):
                opening, closing = "(", ")"
            elif isinstance(value, (list, deque)):
                opening, closing = "[", "]"
            else:
                opening, closing = f"{type(value).__name__}(", ")"
            size = _size(value)
            if level <= 0:
                return f"{opening}...{closing}" if size else opening + closing
            items = [preview(v, level - 1) for v in _first(value, 5)]
            return _join(opening, items, size, closing)
    except Exception:
        pass
    return safe_repr(value, 80)


def _size(value: Any) -> int:
    return len(value)


def _join(opening: str, items: list[str], size: int, closing: str) -> str:
    if size > len(items):
        items.append(f"...{size - len(items)} more")
    return opening + ", ".join(items) + closing


def _first(items: Any, count: int) -> list[Any]:
    out = []
    for index, item in enumerate(items):
        if index >= count:
            break
        out.append(item)
    return out
