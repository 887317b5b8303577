"""Event accessors shared by grouping and titles: an event's exceptions, crash frame, message,
level and chosen thread, read leniently from an event as any SDK may send it.

Serves docs/sentry-protocol.md §6.3 (exceptions) and §6.5 (the crash frame and other values that
fingerprint variables resolve to); titles.py reads the same values. Imports only ``frames.py``
(never grouping.py).

Pure: no Django, no I/O; nothing here raises on odd input.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from bugnet_server.digest.frames import (
    NATIVE_UNKNOWN_FUNCTIONS,
    is_in_app,
    platform,
    stack_frames,
    text,
)

_LEVELS: Final = frozenset({"fatal", "error", "warning", "info", "debug"})
_LEVEL_ALIASES: Final = {"warn": "warning", "critical": "fatal", "log": "info"}
_PYTHON_LEVELS: Final = {10: "debug", 20: "info", 30: "warning", 40: "error", 50: "fatal"}


def exceptions_of(event: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The event's exceptions, oldest first (``{"values": [...]}`` or a bare list; entries that
    are not objects are dropped)."""
    return _values(event.get("exception"))


def last_exception(event: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The exception that was finally raised (the last one), if any."""
    exceptions = exceptions_of(event)
    return exceptions[-1] if exceptions else None


def chosen_thread(event: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The one crashed thread, else the one current thread, else the only thread."""
    threads = _values(event.get("threads"))
    for subset in (
        [thread for thread in threads if thread.get("crashed") is True],
        [thread for thread in threads if thread.get("current") is True],
        threads,
    ):
        if len(subset) == 1:
            return subset[0]
    return None


def crash_frame(event: Mapping[str, Any], *, named: bool = False) -> Mapping[str, Any] | None:
    """The frame where the event happened: the last in-app frame of the last exception's stack
    trace (else of the top-level stack trace, else of the chosen thread), or the last frame when
    none is in-app. ``named`` skips frames without a usable function name."""
    last = last_exception(event)
    frames = stack_frames(last.get("stacktrace")) if last else []
    if not frames:
        frames = stack_frames(event.get("stacktrace"))
    if not frames:
        thread = chosen_thread(event)
        frames = stack_frames(thread.get("stacktrace")) if thread else []
    event_platform = platform(event.get("platform"))
    fallback: Mapping[str, Any] | None = None
    for frame in frames[::-1]:
        if named and (text(frame.get("function")) or "<unknown>") in NATIVE_UNKNOWN_FUNCTIONS:
            continue
        if is_in_app(frame, platform(frame.get("platform"), event_platform)):
            return frame
        fallback = fallback or frame
    return fallback


def message_parts(event: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(template, formatted)`` of the event's message: ``logentry``, else the legacy
    top-level ``message`` (a plain string there is the formatted text)."""
    for source in (event.get("logentry"), event.get("message")):
        if isinstance(source, Mapping):
            parts = (lenient_text(source.get("message")), lenient_text(source.get("formatted")))
        else:
            parts = (None, lenient_text(source))
        if parts[0] or parts[1]:
            return parts
    return None, None


def event_level(event: Mapping[str, Any]) -> str:
    """The event's level as Relay normalizes it: one of fatal, error, warning, info, debug
    (aliases and Python's numeric levels accepted); ``error`` when missing or unknown."""
    raw = event.get("level")
    if isinstance(raw, int) and not isinstance(raw, bool):
        return _PYTHON_LEVELS.get(raw, "error")
    level = raw.strip().lower() if isinstance(raw, str) else ""
    level = _LEVEL_ALIASES.get(level, level)
    return level if level in _LEVELS else "error"


def _values(container: Any) -> list[Mapping[str, Any]]:
    if isinstance(container, Mapping):
        container = container.get("values")
    if not isinstance(container, list):
        return []
    return [item for item in container if isinstance(item, Mapping)]


def lenient_text(value: Any) -> str | None:
    """A field the protocol converts to a string: numbers and booleans as text, objects and
    arrays as JSON (as Relay does for exception values)."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return number_text(value)
    if isinstance(value, (Mapping, list)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return None


def number_text(value: int | float) -> str:
    """A number as text; a float with an integral value without its ``.0``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
