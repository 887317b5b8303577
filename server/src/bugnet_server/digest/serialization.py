"""The last step before storage: every string storable, and the whole event within 1 MiB.

Sizes are the bytes of the event's compact UTF-8 JSON (orjson), which is also what is stored:
the bytes measured here are the bytes kept, so the digest serializes each event once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, Final

import orjson

from bugnet_server.digest.fields import ProcessingErrors, storable_text

MAX_EVENT_SIZE: Final = 1024 * 1024
# Never shed: what identifies and classifies the event, and the report of what was shed.
_ESSENTIAL: Final = frozenset(
    {"event_id", "type", "timestamp", "received", "level", "platform", "logentry", "errors"}
)
_ERRORS_ROOM: Final = 4096


def dump(value: Any) -> bytes:
    """Compact UTF-8 JSON (orjson; the standard library for integers beyond 64 bits)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8", "backslashreplace")


def finish_event(event: dict[str, Any], errors: ProcessingErrors) -> bytes:
    """Make ``event`` storable and shed data until it fits ``MAX_EVENT_SIZE``: frame vars, then
    the oldest breadcrumbs, then ``extra``, then source context, then the largest remaining
    fields. Each step that removes something records a ``too_large`` error. Returns the event's
    JSON, as stored."""
    _set_errors(event, errors)
    try:
        data = orjson.dumps(event)
        clean = b"\\u0000" not in data  # NUL, which PostgreSQL rejects in text
    except TypeError:  # a lone surrogate (or an integer beyond 64 bits)
        clean = False
    if not clean:
        event.update(_storable(event))
        data = dump(event)
    for shed in _SHEDDERS:
        if len(data) <= MAX_EVENT_SIZE:
            return data
        shed(event, errors, len(data) - MAX_EVENT_SIZE)
        _set_errors(event, errors)
        data = dump(event)
    return data


def _set_errors(event: dict[str, Any], errors: ProcessingErrors) -> None:
    if errors.items:
        event["errors"] = errors.as_list()


def _storable(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        return storable_text(value)
    if kind is dict:
        return {_storable(key): _storable(item) for key, item in value.items()}
    if kind is list:
        return [_storable(item) for item in value]
    return value


def _frames(event: dict[str, Any]) -> Iterator[dict[str, Any]]:
    holders = [
        *event.get("exception", {}).get("values", ()),
        *event.get("threads", {}).get("values", ()),
    ]
    stacktraces = [event.get("stacktrace")]
    for holder in holders:
        stacktraces += [holder.get("stacktrace"), holder.get("raw_stacktrace")]
    for stacktrace in stacktraces:
        if stacktrace is not None:
            yield from stacktrace["frames"]


def _strip_frames(event: dict[str, Any], errors: ProcessingErrors, fields: tuple[str, ...]) -> None:
    stripped = 0
    for frame in _frames(event):
        for field in fields:
            if frame.pop(field, None) is not None:
                stripped += 1
    if stripped:
        errors.add("too_large", "frames." + "/".join(fields), stripped)


def _shed_frame_vars(event: dict[str, Any], errors: ProcessingErrors, excess: int) -> None:
    _strip_frames(event, errors, ("vars",))


def _shed_breadcrumbs(event: dict[str, Any], errors: ProcessingErrors, excess: int) -> None:
    crumbs = event.get("breadcrumbs", {}).get("values", [])
    dropped = freed = 0
    while dropped < len(crumbs) and freed < excess:
        freed += len(dump(crumbs[dropped])) + 1
        dropped += 1
    if not dropped:
        return
    del crumbs[:dropped]
    if not crumbs:
        del event["breadcrumbs"]
    errors.add("too_large", "breadcrumbs", dropped)


def _shed_extra(event: dict[str, Any], errors: ProcessingErrors, excess: int) -> None:
    if event.pop("extra", None) is not None:
        errors.add("too_large", "extra")


def _shed_source_context(event: dict[str, Any], errors: ProcessingErrors, excess: int) -> None:
    _strip_frames(event, errors, ("pre_context", "context_line", "post_context"))


def _shed_largest_fields(event: dict[str, Any], errors: ProcessingErrors, excess: int) -> None:
    sizes = {key: len(dump(value)) for key, value in event.items() if key not in _ESSENTIAL}
    excess += _ERRORS_ROOM  # the errors this step adds take room too
    for key in sorted(sizes, key=sizes.__getitem__, reverse=True):
        if excess <= 0:
            return
        del event[key]
        excess -= sizes[key]
        errors.add("too_large", key)


_SHEDDERS: Final[tuple[Callable[[dict[str, Any], ProcessingErrors, int], None], ...]] = (
    _shed_frame_vars,
    _shed_breadcrumbs,
    _shed_extra,
    _shed_source_context,
    _shed_largest_fields,
)
