"""What an issue is called: title, culprit, level and metadata, as Sentry shows them.

Pure: no Django, no I/O; never raises on an odd event (missing fields give the fallbacks).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from bugnet_server.digest.accessors import (
    crash_frame,
    event_level,
    last_exception,
    message_parts,
)

UNLABELED: Final = "<unlabeled event>"
_MAX_TITLE: Final = 200
_MAX_CULPRIT: Final = 200  # Relay's culprit limit
_MAX_TYPE: Final = 128
_MAX_VALUE: Final = 1024
_NATIVE_PLATFORMS: Final = frozenset({"objc", "cocoa", "swift", "native", "c"})
_JS_PLATFORMS: Final = frozenset({"javascript", "node"})


@dataclass(frozen=True)
class IssueDescription:
    """How an event describes its issue."""

    title: str  # e.g. "ZeroDivisionError: division by zero"; at most 200 characters
    culprit: str  # where it broke, e.g. "app.orders in split_order"; "" when unknown
    level: str  # fatal | error | warning | info | debug
    metadata: dict[str, str]  # type, value, logger; filename and function when known


@dataclass(frozen=True)
class _Error:
    type: str  # "" for a synthetic exception
    value: str
    synthetic: bool


def describe(event: Mapping[str, Any]) -> IssueDescription:
    """The title, culprit, level and metadata of ``event`` (a decoded event payload).

    An error (its last exception has a type or value) is titled ``"<type>: <first line of
    value>"``; a message event by the first line of its message (formatted, else template).
    A synthetic exception's type means nothing, so such an event is titled by its message, else
    its value, else its crash function. ``"<unlabeled event>"`` when nothing applies.
    """
    if not isinstance(event, Mapping):
        event = {}
    error = _error(event)
    return IssueDescription(
        title=_truncate(_title(event, error), _MAX_TITLE),
        culprit=_truncate(_culprit(event, error), _MAX_CULPRIT),
        level=event_level(event),
        metadata=_metadata(event, error),
    )


def _error(event: Mapping[str, Any]) -> _Error | None:
    """The last exception, when the event is an error: it has a type or value, or is synthetic."""
    exception = last_exception(event)
    if exception is None:
        return None
    mechanism = exception.get("mechanism")
    synthetic = isinstance(mechanism, Mapping) and mechanism.get("synthetic") is True
    value = _lenient(exception.get("value"))
    if synthetic:
        return _Error("", value, synthetic=True)
    type_ = _lenient(exception.get("type"))
    if not (type_ or value):
        return None
    return _Error(type_ or "Error", value, synthetic=False)  # Sentry: "Error: <value>"


def _title(event: Mapping[str, Any], error: _Error | None) -> str:
    if error is not None and not error.synthetic:
        line = _first_line(error.value)
        return f"{error.type}: {line}" if line else error.type
    template, formatted = message_parts(event)
    line = _first_line(formatted or template or "")
    if line:
        return line
    if error is not None:
        line = _first_line(error.value)
        frame = crash_frame(event, named=True)
        return line or _text((frame or {}).get("function")) or UNLABELED
    return UNLABELED


def _culprit(event: Mapping[str, Any], error: _Error | None) -> str:
    """``"<module> in <function>"`` of the crash frame (``"<function>(<module>)"`` on
    JavaScript, the function alone on native platforms), else the transaction."""
    if error is None or not error.synthetic:  # Sentry gives synthetic errors no culprit
        frame = crash_frame(event)
        if frame is not None:
            culprit = _frame_culprit(frame, _text(event.get("platform")).lower())
            if culprit:
                return culprit
    return _text(event.get("transaction"))


def _frame_culprit(frame: Mapping[str, Any], event_platform: str) -> str:
    platform = _text(frame.get("platform")).lower() or event_platform
    function = _text(frame.get("function")) or "?"
    if platform in _NATIVE_PLATFORMS:
        return function
    location = _text(frame.get("module")) or _text(frame.get("filename"))
    if not location:
        return ""
    if platform in _JS_PLATFORMS:
        return f"{function}({location})"
    return f"{location} in {function}"


def _metadata(event: Mapping[str, Any], error: _Error | None) -> dict[str, str]:
    metadata = {
        "type": _truncate(error.type, _MAX_TYPE) if error else "",
        "value": _truncate(error.value, _MAX_VALUE) if error else "",
        "logger": _text(event.get("logger")),
    }
    frame = crash_frame(event, named=True)
    if frame is not None:
        filename = _text(frame.get("filename")) or _text(frame.get("abs_path"))
        if filename:
            metadata["filename"] = filename
        metadata["function"] = _text(frame.get("function"))
    return metadata


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _lenient(value: Any) -> str:
    """An exception type or value as text: numbers and booleans as written, objects and arrays
    as JSON (as Relay stringifies an exception value), anything else ""."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (Mapping, list)) and value:
        return json.dumps(value, separators=(",", ":"), default=str)
    return ""
