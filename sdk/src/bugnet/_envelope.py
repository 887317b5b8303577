"""Envelopes: the Sentry protocol's container for events and everything else.

``Envelope.serialize`` writes what the transport sends; :func:`parse_envelope` reads envelopes
exactly as the protocol's grammar defines them (items with or without ``length``, optional final
newline) and is what the tests use to read both our envelopes and the sentry-sdk fixtures.
"""

from __future__ import annotations

import os
import threading

from bugnet._serialize import safe_repr, to_jsonable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Optional

# Item type → rate-limit / client-report data category (as the Python SDK maps them).
_CATEGORIES = {
    "event": "error",
    "session": "session",
    "sessions": "session",
    "client_report": "internal",
    "check_in": "monitor",
    "log": "log_item",
    "transaction": "transaction",
    "attachment": "attachment",
    "span": "span",
    "profile": "profile",
    "profile_chunk": "profile_chunk",
    "replay_event": "replay",
    "replay_recording": "replay",
    "feedback": "feedback",
    "user_report": "feedback",
    "statsd": "metric_bucket",
    "trace_metric": "trace_metric",
}


class EnvelopeError(ValueError):
    """The bytes are not a well-formed envelope."""


def dumps(value: Any) -> bytes:
    """Compact, valid UTF-8 JSON that never fails: odd objects become reprs, NaN becomes null,
    and a lone surrogate (a file name decoded with ``surrogateescape``...) becomes U+FFFD."""
    import json

    try:
        text = json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=safe_repr
        )
    except (ValueError, TypeError, RecursionError):
        text = json.dumps(
            _finite(to_jsonable(value, limit=1 << 20)),
            separators=(",", ":"),
            ensure_ascii=False,
            default=safe_repr,
        )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # Strict servers (Relay) reject a whole envelope for one invalid UTF-8 sequence. The
        # UTF-16 round trip joins split surrogate pairs and turns each lone one into U+FFFD.
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        return text.encode("utf-8")


def _finite(value: Any) -> Any:
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


# Serializes the lazy payloads: close() may spool an envelope the transport's thread is sending.
_prepare_lock = threading.RLock()


def _new_prepare_lock() -> None:
    global _prepare_lock
    _prepare_lock = threading.RLock()  # a fork may have copied it locked


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_prepare_lock)


class Item:
    """One envelope item. Its payload may be given as bytes, or as a JSON value that is
    serialized on first use (on the transport's thread), after an optional ``prepare`` step."""

    __slots__ = ("_payload", "headers", "prepare", "type", "value")

    def __init__(
        self,
        type: str,
        payload: Optional[bytes] = None,
        headers: Optional[dict[str, Any]] = None,
        *,
        value: Any = None,
        prepare: Optional[Callable[[Any], bytes]] = None,
    ) -> None:
        self.type = type
        self._payload = payload
        self.headers = headers if headers is not None else {}
        self.value = value
        self.prepare = prepare

    @classmethod
    def from_json(cls, item_type: str, value: Any, **headers: Any) -> Item:
        return cls(item_type, None, {"content_type": "application/json", **headers}, value=value)

    @property
    def payload(self) -> bytes:
        payload = self._payload
        if payload is None:
            with _prepare_lock:
                payload = self._payload
                if payload is None:
                    payload = self.prepare(self.value) if self.prepare else dumps(self.value)
                    self._payload = payload
                    self.value = None
        return payload

    @property
    def category(self) -> str:
        return _CATEGORIES.get(self.type, "default")

    def json(self) -> Any:
        import json

        return json.loads(self.payload)

    def serialize(self) -> bytes:
        payload = self.payload
        headers = {"type": self.type, **self.headers, "length": len(payload)}
        return dumps(headers) + b"\n" + payload + b"\n"

    def __repr__(self) -> str:
        return f"<Item {self.type}>"


class Envelope:
    __slots__ = ("headers", "items")

    def __init__(
        self, headers: Optional[dict[str, Any]] = None, items: Optional[list[Item]] = None
    ) -> None:
        self.headers = headers if headers is not None else {}
        self.items = items if items is not None else []

    def __repr__(self) -> str:
        return f"<Envelope {self.headers.get('event_id')} {self.items}>"

    def serialize_items(self) -> bytes:
        return b"".join(item.serialize() for item in self.items)

    def serialize(self, sent_at: Optional[str] = None) -> bytes:
        headers = dict(self.headers)
        if sent_at is not None:
            headers["sent_at"] = sent_at
        return dumps(headers) + b"\n" + self.serialize_items()

    @property
    def event_id(self) -> Optional[str]:
        value = self.headers.get("event_id")
        return value if isinstance(value, str) else None


def parse_envelope(data: bytes) -> Envelope:
    """Parse envelope bytes; raise :class:`EnvelopeError` saying what is malformed."""
    newline = data.find(b"\n")
    header_line = data if newline < 0 else data[:newline]
    headers = _json_object(header_line, "envelope header")
    envelope = Envelope(headers=headers)
    pos = len(data) if newline < 0 else newline + 1
    while pos < len(data):
        end = data.find(b"\n", pos)
        header_line = data[pos:] if end < 0 else data[pos:end]
        if not header_line.strip() and end < 0:
            break  # nothing after a trailing newline
        item_headers = _json_object(header_line, f"item header at byte {pos}")
        item_type = item_headers.pop("type", None)
        if not isinstance(item_type, str):
            raise EnvelopeError(f"item header at byte {pos} has no string 'type'")
        pos = len(data) if end < 0 else end + 1
        length = item_headers.pop("length", None)
        if length is not None:
            if not isinstance(length, int) or isinstance(length, bool) or length < 0:
                raise EnvelopeError(f"item header at byte {pos}: 'length' must be a whole number")
            payload = data[pos : pos + length]
            if len(payload) < length:
                raise EnvelopeError(
                    f"item '{item_type}' declares {length} bytes but only {len(payload)} remain"
                )
            pos += length
            if pos < len(data):
                if data[pos : pos + 1] != b"\n":
                    raise EnvelopeError(f"item '{item_type}' is not followed by a newline")
                pos += 1
        else:
            end = data.find(b"\n", pos)
            payload = data[pos:] if end < 0 else data[pos:end]
            pos = len(data) if end < 0 else end + 1
        envelope.items.append(Item(item_type, payload, item_headers))
    return envelope


def _json_object(line: bytes, what: str) -> dict[str, Any]:
    import json

    try:
        value = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EnvelopeError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise EnvelopeError(f"{what} must be a JSON object")
    return value
