"""Keeping an event under the protocol's size limit (1 MiB per event) without failing.

Runs on the transport's thread. The event is serialized as it is; if too large, locals go
first, then breadcrumbs, then request bodies and extras, then every string and list is cut
(harder each round), and as a last resort a minimal event (ids, level, exception types and
values, message) is sent. Something always goes out, and it always fits.
"""

from __future__ import annotations

from bugnet._envelope import dumps
from bugnet._serialize import cut

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from bugnet.types import Event

MAX_EVENT_BYTES = 1_000_000  # Relay's limit is 1 MiB; keep a margin for the envelope
_SHRINK_ROUNDS = ((512, 50), (128, 10), (32, 3))  # (string length, items per container)
_MINIMAL_KEYS = ("event_id", "timestamp", "level", "platform", "logger", "release",
                 "environment", "dist", "server_name", "transaction", "sdk", "fingerprint")  # fmt: skip


def normalize_shapes(event: Event) -> None:
    """Turn the protocol's bare-list forms (``exception: [...]``) into ``{"values": [...]}``."""
    for key in ("exception", "breadcrumbs", "threads"):
        value: Any = event.get(key)
        if isinstance(value, list):
            event[key] = {"values": value}
        elif value is not None and not isinstance(value, dict):
            del event[key]  # type: ignore[misc]


def fit_event(event: Event, limit: int = MAX_EVENT_BYTES) -> bytes:
    """Serialize ``event`` in at most ``limit`` bytes, shedding what matters least first."""
    data = dumps(event)
    if len(data) <= limit:
        return data
    normalize_shapes(event)  # before_send may have returned bare lists
    for shed in (_shed_locals, _shed_breadcrumbs, _shed_bodies):
        shed(event)
        data = dumps(event)
        if len(data) <= limit:
            return data
    for max_string, max_items in _SHRINK_ROUNDS:
        data = dumps(_shrink(dict(event), max_string, max_items))
        if len(data) <= limit:
            return data
    return dumps(_minimal(event))


def _frames(event: Event) -> Iterator[dict[str, Any]]:
    for key in ("exception", "threads"):
        container: Any = event.get(key)
        for value in container.get("values") or () if isinstance(container, dict) else ():
            stacktrace = value.get("stacktrace") if isinstance(value, dict) else None
            if isinstance(stacktrace, dict):
                yield from (f for f in stacktrace.get("frames") or () if isinstance(f, dict))


def _shed_locals(event: Event) -> None:
    for frame in _frames(event):
        frame.pop("vars", None)


def _shed_breadcrumbs(event: Event) -> None:
    crumbs: Any = event.get("breadcrumbs", {}).get("values") or []
    newest = crumbs[-10:] if isinstance(crumbs, list) else []
    event["breadcrumbs"] = {"values": newest if len(dumps(newest)) < 100_000 else []}


def _shed_bodies(event: Event) -> None:
    request: Any = event.get("request")
    if isinstance(request, dict):
        request.pop("data", None)
    event.pop("extra", None)
    event.pop("modules", None)


def _shrink(value: Any, max_string: int, max_items: int) -> Any:
    if isinstance(value, str):
        return cut(value, max_string)
    if isinstance(value, dict):
        return {
            cut(str(k), max_string): _shrink(v, max_string, max_items)
            for k, v in list(value.items())[: max_items * 5]
        }
    if isinstance(value, list):
        kept = value if len(value) <= 2 * max_items else value[:max_items] + value[-max_items:]
        return [_shrink(v, max_string, max_items) for v in kept]
    return value


def _minimal(event: Event) -> dict[str, Any]:
    """Only what identifies the event and says what went wrong."""
    small: dict[str, Any] = {k: _shrink(event[k], 200, 10) for k in _MINIMAL_KEYS if k in event}  # type: ignore[literal-required]
    values: Any = event.get("exception", {}).get("values") or []
    if isinstance(values, list) and values:
        small["exception"] = {
            "values": [
                {
                    "type": cut(str(v.get("type", "")), 256),
                    "value": cut(str(v.get("value", "")), 1024),
                }
                for v in values[-5:]
                if isinstance(v, dict)
            ]
        }
    message: Any = event.get("logentry", {}).get("formatted") or event.get("message")
    if isinstance(message, str):
        small["message"] = cut(message, 8192)
    small["extra"] = {"bugnet.trimmed": "the event was over the size limit and was cut down"}
    return small
