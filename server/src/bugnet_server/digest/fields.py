"""Readers that turn untrusted JSON values into typed fields, and the processing-error log.

A reader takes a raw value and returns the normalized value or ``INVALID``; it never raises.
``read_object`` applies a table of readers to an object and records an ``invalid_data`` error
for each rejected value, so the per-interface modules only describe their fields.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from bugnet_server.digest.trimming import SKIP, Bag, Limit, trim_databag, trim_string

Reader = Callable[[Any], Any]


class _Invalid:
    __slots__ = ()

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Final = _Invalid()

PLATFORMS: Final = frozenset(
    [
        "as3",
        "c",
        "cfml",
        "cocoa",
        "csharp",
        "elixir",
        "haskell",
        "go",
        "groovy",
        "java",
        "javascript",
        "native",
        "node",
        "objc",
        "other",
        "perl",
        "php",
        "python",
        "ruby",
    ]
)

LEVELS: Final = {
    "fatal": "fatal",
    "critical": "fatal",
    "error": "error",
    "warning": "warning",
    "warn": "warning",
    "info": "info",
    "log": "info",
    "debug": "debug",
}

_UUID: Final = re.compile(
    r"[0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)

_UNSTORABLE: Final = re.compile("[\x00\ud800-\udfff]")
_NO_VALUE: Final = object()
_ERROR_TEXT_MAX: Final = 200


class ProcessingErrors:
    """Sentry-style processing errors, ``{"type", "name", "value"}``, in the order found.

    Bounded: a payload with a million bad entries yields ``MAX`` errors and one summary. The
    few event-wide errors (time fixes, shed data) are always kept: they explain the event."""

    MAX: Final = 100
    ALWAYS_KEPT: Final = frozenset(
        {"clock_drift", "future_timestamp", "past_timestamp", "too_large"}
    )

    __slots__ = ("items", "omitted")

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.omitted = 0

    def add(self, kind: str, name: str, value: Any = _NO_VALUE) -> None:
        if len(self.items) >= self.MAX and kind not in self.ALWAYS_KEPT:
            self.omitted += 1
            return
        error: dict[str, Any] = {"type": kind, "name": _short(name)}
        if value is not _NO_VALUE:
            error["value"] = _describe(value)
        self.items.append(error)

    def invalid(self, name: str, value: Any) -> None:
        self.add("invalid_data", name, value)

    def as_list(self) -> list[dict[str, Any]]:
        errors = [dict(error) for error in self.items]
        if self.omitted:
            errors.append({"type": "too_many_errors", "name": "errors", "value": self.omitted})
        return errors


def _short(text: str) -> str:
    return storable_text(trim_string(text, Limit(_ERROR_TEXT_MAX)))


def storable_text(text: str) -> str:
    """``text`` with NUL and lone surrogates (which PostgreSQL refuses) replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", text)


def _describe(value: Any) -> Any:
    # The offending value helps the user, but must not smuggle a huge payload into the errors.
    if type(value) is str:
        return _short(value)
    if isinstance(value, (bool, int)) or value is None:
        return value
    if type(value) is float:
        return value if math.isfinite(value) else str(value)
    if type(value) is dict:
        return "(object)"
    if type(value) is list:
        return "(array)"
    return f"({type(value).__name__})"


def read_object(
    errors: ProcessingErrors, raw: Mapping[str, Any], path: str, readers: Mapping[str, Reader]
) -> dict[str, Any]:
    """Apply ``readers`` to the keys of ``raw`` that have one; other keys are left out. Error
    names are ``path.key`` (just ``key`` at the top level, where ``path`` is empty)."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None:
            continue
        reader = readers.get(key)
        if reader is None:
            continue
        result = reader(value)
        if result is INVALID:
            errors.invalid(f"{path}.{key}" if path else key, value)
        else:
            out[key] = result
    return out


def expect_dict(errors: ProcessingErrors, value: Any, path: str) -> dict[str, Any] | None:
    """``value`` if it is an object; None if absent; None and an error for anything else."""
    if type(value) is dict:
        return value
    if value is not None:
        errors.invalid(path, value)
    return None


def expect_values(errors: ProcessingErrors, value: Any, path: str) -> list[Any] | None:
    """The items of a ``{"values": [...]}`` container, also accepting a bare list or a single
    object; None if absent or unusable (with an error)."""
    if type(value) is list:
        return value
    if type(value) is dict:
        if "values" not in value:
            return [value]
        items = value["values"]
        if type(items) is list:
            return items
        if items is None:
            return None
    if value is not None:
        errors.invalid(path, value)
    return None


def string_reader(limit: Limit) -> Reader:
    """A reader accepting only strings."""

    longest = limit.soft + limit.allowance

    def read(value: Any) -> Any:
        if type(value) is not str:
            return INVALID
        return value if len(value) <= longest else trim_string(value, limit)

    return read


def lenient_string_reader(limit: Limit) -> Reader:
    """A reader accepting strings and numbers (converted, as Relay's lenient strings are)."""

    def read(value: Any) -> Any:
        text = lenient_string(value)
        return INVALID if text is None else trim_string(text, limit)

    return read


def lenient_string(value: Any) -> str | None:
    """A string, or a number as text; None for anything else."""
    kind = type(value)
    if kind is str:
        return str(value)
    if kind is int:
        try:
            return str(value)
        except ValueError:  # beyond Python's int-to-text digit limit
            return None
    if kind is float and math.isfinite(value):
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    return None


def read_int(value: Any) -> Any:
    """An integer; a float only when it is whole."""
    if type(value) is int:
        return value
    if type(value) is float and math.isfinite(value) and value.is_integer():
        return int(value)
    return INVALID


def read_bool(value: Any) -> Any:
    return value if type(value) is bool else INVALID


def read_level(value: Any) -> Any:
    """One of the five levels; aliases (``critical``, ``warn``, ``log``) and case are forgiven."""
    if type(value) is not str:
        return INVALID
    return LEVELS.get(value.strip().lower(), INVALID)


def read_uuid(value: Any) -> Any:
    """32 lowercase hex digits, from 32 hex digits or a dashed UUID in any case."""
    if type(value) is not str or _UUID.fullmatch(value) is None:
        return INVALID
    return value.replace("-", "").lower()


def read_platform(value: Any) -> Any:
    return value if type(value) is str and value in PLATFORMS else INVALID


def bag_reader(bag: Bag, *, objects_only: bool = True) -> Reader:
    """A reader trimming a databag; by default only objects are accepted at the top."""

    def read(value: Any) -> Any:
        if objects_only and type(value) is not dict:
            return INVALID
        trimmed = trim_databag(value, bag)
        return INVALID if trimmed is SKIP else trimmed

    return read


def string_list_reader(limit: Limit) -> Reader:
    """A reader for a list of strings (source lines, tags of an SDK...): numbers become text,
    null becomes an empty string so line positions survive, other entries are left out."""
    longest = limit.soft + limit.allowance

    def read(value: Any) -> Any:
        if type(value) is not list:
            return INVALID
        if _all_short_strings(value, longest):
            return list(value)  # the usual case, taken without copying each line
        out: list[str] = []
        for item in value:
            text = "" if item is None else lenient_string(item)
            if text is not None:
                out.append(trim_string(text, limit))
        return out

    return read


def _all_short_strings(value: list[Any], longest: int) -> bool:
    # join() refuses anything but strings; four times faster than testing each item in Python
    # (the 5 to 11 source lines around each frame are the commonest list in an event).
    try:
        total = len("".join(value))
    except TypeError:
        return False
    return total <= longest or max(map(len, value)) <= longest


def as_json_text(value: Any) -> str:
    """Any JSON value as compact text, for fields that must be strings."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=repr)
    except (ValueError, RecursionError):
        return "[unrepresentable]"
