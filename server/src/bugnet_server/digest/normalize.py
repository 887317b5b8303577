"""Event normalization: any JSON payload in, one canonical, bounded event out.

The digest worker calls ``normalize_event`` on every stored event before grouping it. The rules
follow the protocol notes (§5, Relay's behaviour in §5.8); the shape is fixed so that grouping,
titles and the UI never check types:

- ``event_id`` 32 lowercase hex; ``timestamp``, ``received`` (and ``start_timestamp``,
  breadcrumb timestamps) float epoch seconds; ``level`` one of five; ``platform`` a known one;
  ``type`` ``transaction``, ``error`` (has an exception) or ``default``.
- ``exception``, ``threads``, ``breadcrumbs``: ``{"values": [...]}``, present only if non-empty.
- ``tags``: ``[[key, value], ...]`` strings; ``request`` headers, cookies and query string:
  ``[[name, value], ...]`` strings; ``logentry`` always has ``formatted``.
- ``environment`` stays absent when the SDK sent none (Sentry's behaviour).
- Unknown top-level keys are dropped with an ``invalid_attribute`` error; unknown keys inside
  interfaces are dropped silently, except the user's, which move to ``user.data``.

Pure Python: no Django here, so the module is testable and reusable on its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Final

from bugnet_server.digest import attributes, timestamps
from bugnet_server.digest.breadcrumbs import normalize_breadcrumbs
from bugnet_server.digest.exception_values import normalize_exceptions
from bugnet_server.digest.fields import (
    INVALID,
    PLATFORMS,
    ProcessingErrors,
    Reader,
    bag_reader,
    expect_values,
    read_level,
    read_object,
    read_uuid,
    string_reader,
)
from bugnet_server.digest.messages import normalize_logentry
from bugnet_server.digest.request_user import normalize_request, normalize_user
from bugnet_server.digest.serialization import finish_event
from bugnet_server.digest.stacktraces import normalize_stacktrace, normalize_threads
from bugnet_server.digest.trimming import LARGE, LARGER, MASSIVE, MEDIUM, SERVER_NAME, SHORT


@dataclass(frozen=True, slots=True)
class NormalizedEvent:
    """The canonical event, and the processing errors found (also in ``event["errors"]``)."""

    event: dict[str, Any]
    errors: list[dict[str, Any]]
    json: bytes = b""  # the event serialized, as stored (empty if the event was changed since)


_SIMPLE_READERS: Final[dict[str, Reader]] = {
    "logger": attributes.read_logger,
    "transaction": string_reader(SHORT),
    "culprit": string_reader(SHORT),
    "server_name": string_reader(SERVER_NAME),
    "release": attributes.read_release,
    "dist": attributes.read_dist,
    "environment": attributes.read_environment,
    "extra": bag_reader(MASSIVE),
    "debug_meta": bag_reader(LARGER),
    "measurements": bag_reader(LARGE),
}
_LEGACY_NAMES: Final = {
    "sentry.interfaces.Exception": "exception",
    "sentry.interfaces.Message": "logentry",
    "sentry.interfaces.Stacktrace": "stacktrace",
    "sentry.interfaces.Http": "request",
    "sentry.interfaces.User": "user",
    "sentry.interfaces.Breadcrumbs": "breadcrumbs",
    "sentry.interfaces.Threads": "threads",
    "sentry.interfaces.Contexts": "contexts",
}
_HANDLED: Final = frozenset(
    {
        *_SIMPLE_READERS,
        *("event_id", "timestamp", "start_timestamp", "level", "platform", "type", "message"),
        *("logentry", "exception", "threads", "stacktrace", "breadcrumbs", "tags", "spans"),
        *("fingerprint", "request", "user", "contexts", "sdk", "modules", "transaction_info"),
    }
)
# Known to the protocol but not kept: server-populated fields, and ones nothing here shows.
# ``_meta`` annotates the raw shape, which normalization changes, so its paths would be wrong.
_DROPPED_QUIETLY: Final = frozenset(
    {
        *("errors", "_meta", "received", "version", "time_spent", "key_id", "project", "site"),
        *("grouping_config", "checksum", "ingest_path", "breakdowns", "scraping_attempts"),
        *("_metrics", "_metrics_summary", "_dsc", "csp", "hpkp", "expectct", "expectstaple"),
        *("template", "sentry.interfaces.Template"),
    }
)


def normalize_event(
    raw: Any,
    *,
    received_at: float,
    sent_at: str | None = None,
    client_ip: str | None = None,
    event_id: str | None = None,
    project_platform: str | None = None,
) -> NormalizedEvent:
    """Normalize an event payload (any JSON value; never raises).

    ``received_at`` is when the server got the envelope (epoch seconds); ``sent_at`` the
    envelope header used for clock-drift correction; ``client_ip`` the connection's address,
    used only where the protocol says to infer it; ``event_id`` the envelope header's id, which
    wins over the payload's; ``project_platform`` the default platform.
    """
    errors = ProcessingErrors()
    received_at = float(received_at)
    if type(raw) is not dict:
        errors.invalid("event", raw)
        raw = {}
    raw = _with_current_names(raw)
    event = _normalize(raw, errors, event_id, project_platform, client_ip)
    _fix_timestamps(event, raw, errors, received_at, sent_at)
    for key in raw:
        if key not in _HANDLED and key not in _DROPPED_QUIETLY:
            errors.add("invalid_attribute", str(key))
    data = finish_event(event, errors)
    # Copied from the event, whose strings finish_event has made storable.
    return NormalizedEvent(event, [dict(error) for error in event.get("errors", ())], data)


def _with_current_names(raw: dict[str, Any]) -> dict[str, Any]:
    legacy = _LEGACY_NAMES.keys() & raw.keys()
    if not legacy:
        return raw
    renamed = dict(raw)
    for name in legacy:
        value = renamed.pop(name)
        if renamed.get(_LEGACY_NAMES[name]) is None:
            renamed[_LEGACY_NAMES[name]] = value
    return renamed


def _normalize(
    raw: dict[str, Any],
    errors: ProcessingErrors,
    event_id: str | None,
    project_platform: str | None,
    client_ip: str | None,
) -> dict[str, Any]:
    event: dict[str, Any] = {"event_id": _event_id(raw.get("event_id"), event_id, errors)}
    exception = normalize_exceptions(errors, raw.get("exception"))
    is_transaction = raw.get("type") == "transaction"
    event["type"] = "transaction" if is_transaction else "error" if exception else "default"
    event["level"] = _level(raw.get("level"), "info" if is_transaction else "error", errors)
    event["platform"] = _platform(raw.get("platform"), project_platform)
    event.update(read_object(errors, raw, "", _SIMPLE_READERS))
    sdk = attributes.normalize_sdk(errors, raw.get("sdk"))
    request = normalize_request(errors, raw.get("request"))
    parts: dict[str, Any] = {
        "transaction_info": attributes.normalize_transaction_info(
            errors, raw.get("transaction_info")
        ),
        "logentry": normalize_logentry(errors, raw.get("logentry"), raw.get("message")),
        "exception": exception,
        "threads": normalize_threads(errors, raw.get("threads")),
        "stacktrace": normalize_stacktrace(errors, raw.get("stacktrace"), "stacktrace"),
        "tags": attributes.normalize_tags(errors, raw.get("tags"), event.get("server_name")),
        "fingerprint": attributes.normalize_fingerprint(errors, raw.get("fingerprint")),
        "request": request,
        "user": _user(errors, raw.get("user"), request, sdk, client_ip),
        "contexts": attributes.normalize_contexts(errors, raw.get("contexts")),
        "sdk": sdk,
        "modules": attributes.normalize_modules(errors, raw.get("modules")),
    }
    event.update((key, value) for key, value in parts.items() if value is not None)
    return event


def _event_id(payload_id: Any, header_id: str | None, errors: ProcessingErrors) -> str:
    header = read_uuid(header_id)
    if header is not INVALID:
        return str(header)
    payload = read_uuid(payload_id)
    if payload is not INVALID:
        return str(payload)
    if payload_id is not None:
        errors.invalid("event_id", payload_id)
    return uuid.uuid4().hex


def _level(value: Any, default: str, errors: ProcessingErrors) -> str:
    if value is None:
        return default
    level = read_level(value)
    if level is INVALID:
        errors.invalid("level", value)
        return default
    return str(level)


def _platform(value: Any, project_platform: str | None) -> str:
    for candidate in (value, project_platform):
        if type(candidate) is str and candidate in PLATFORMS:
            return candidate
    return "other"


def _user(
    errors: ProcessingErrors,
    value: Any,
    request: dict[str, Any] | None,
    sdk: dict[str, Any] | None,
    client_ip: str | None,
) -> dict[str, Any] | None:
    env = (request or {}).get("env") or {}
    infer_ip = ((sdk or {}).get("settings") or {}).get("infer_ip")
    return normalize_user(
        errors, value, remote_addr=env.get("REMOTE_ADDR"), infer_ip=infer_ip, client_ip=client_ip
    )


def _fix_timestamps(
    event: dict[str, Any],
    raw: dict[str, Any],
    errors: ProcessingErrors,
    received_at: float,
    sent_at: str | None,
) -> None:
    """Parse every timestamp, correct clock drift across all of them, then put the event's
    time in range; missing times default to the receipt (the event) or the event's time
    (breadcrumbs). ``received`` is set to ``received_at``."""
    timestamp = _timestamp(raw.get("timestamp"), "timestamp", errors)
    start = _timestamp(raw.get("start_timestamp"), "start_timestamp", errors)
    crumbs = normalize_breadcrumbs(errors, raw.get("breadcrumbs"))
    spans = _spans(errors, raw.get("spans"))
    drift = timestamps.clock_drift(received_at, sent_at)
    if drift:
        errors.add("clock_drift", "timestamp", round(drift, 3))
        timestamp = None if timestamp is None else timestamps.shift(timestamp, drift)
        start = None if start is None else timestamps.shift(start, drift)
        _shift_all([*crumbs, *spans], drift)
    if timestamp is not None:
        problem = timestamps.range_error(timestamp, received_at)
        if problem:
            errors.add(problem, "timestamp", timestamp)
            # A transaction's start moves with its end, so its duration survives.
            start = None if start is None else timestamps.shift(start, received_at - timestamp)
            timestamp = received_at
    event["timestamp"] = received_at if timestamp is None else timestamp
    if start is not None:
        event["start_timestamp"] = start
    event["received"] = received_at
    for crumb in crumbs:
        crumb.setdefault("timestamp", event["timestamp"])
    if crumbs:
        event["breadcrumbs"] = {"values": crumbs}
    if spans:
        event["spans"] = spans


def _timestamp(value: Any, name: str, errors: ProcessingErrors) -> float | None:
    if value is None:
        return None
    seconds = timestamps.parse_timestamp(value)
    if seconds is None:
        errors.invalid(name, value)
    return seconds


def _shift_all(items: list[dict[str, Any]], drift: float) -> None:
    for item in items:
        for field in ("timestamp", "start_timestamp"):
            if field in item:
                item[field] = timestamps.shift(item[field], drift)


_read_span: Final = bag_reader(MEDIUM)


def _spans(errors: ProcessingErrors, value: Any) -> list[dict[str, Any]]:
    """A transaction's spans: each a medium databag whose timestamps are epoch seconds."""
    items = expect_values(errors, value, "spans") or []
    spans = []
    for index, item in enumerate(items):
        if type(item) is not dict:
            if item is not None:
                errors.invalid(f"spans.{index}", item)
            continue
        span = _read_span(item)
        for field in ("timestamp", "start_timestamp"):
            seconds = _timestamp(item.get(field), f"spans.{index}.{field}", errors)
            if seconds is None:
                span.pop(field, None)
            else:
                span[field] = seconds
        spans.append(span)
    return spans
