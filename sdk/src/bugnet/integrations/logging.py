"""Logging: records at INFO and up become breadcrumbs, at ERROR and up become events.

Every logger is seen, non-propagating ones included, because the hook sits in
``Logger.callHandlers`` (no handler to add, nothing to configure). A breadcrumb is stored as the
LogRecord itself and turned into a dict only if an event is sent, so a ``logger.info`` costs
about a deque append. ``EventHandler`` and ``BreadcrumbHandler`` are ordinary handlers for
``dictConfig`` users who prefer explicit configuration.
"""

from __future__ import annotations

import logging

from bugnet import _api, _patching, _scope
from bugnet._guard import capture_internal_exceptions, inside_sdk
from bugnet._serialize import to_jsonable
from bugnet._timestamps import format_timestamp
from bugnet.integrations import Integration
from bugnet.types import Breadcrumb, Event, Hint

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

DEFAULT_LEVEL = logging.INFO
DEFAULT_EVENT_LEVEL = logging.ERROR
_NEVER = 1 << 30

# Set by the active client's LoggingIntegration; read on every log call.
_breadcrumb_level = _NEVER
_event_level = _NEVER
_ignored_prefixes: set[str] = {"bugnet"}
_ignore_cache: dict[str, bool] = {}

# LogRecord attributes that are not "extra" data.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
    "_bugnet_seen",
}
_LEVELS = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "fatal",
}


def ignore_logger(name: str) -> None:
    """Never turn records of logger ``name`` (or its children) into breadcrumbs or events."""
    _ignored_prefixes.add(name)
    _ignore_cache.clear()


def _is_ignored(name: str) -> bool:
    cached = _ignore_cache.get(name)
    if cached is None:
        cached = any(name == p or name.startswith(p + ".") for p in _ignored_prefixes)
        if len(_ignore_cache) > 10_000:
            _ignore_cache.clear()
        _ignore_cache[name] = cached
    return cached


class LoggingIntegration(Integration):
    """``level``: the lowest level kept as a breadcrumb (None: none);
    ``event_level``: the lowest level sent as an event (None: none)."""

    identifier = "logging"

    def __init__(
        self, level: Optional[int] = DEFAULT_LEVEL, event_level: Optional[int] = DEFAULT_EVENT_LEVEL
    ) -> None:
        self.level = level
        self.event_level = event_level

    @classmethod
    def setup_once(cls) -> None:
        original = logging.Logger.callHandlers

        def callHandlers(self: logging.Logger, record: logging.LogRecord) -> None:  # noqa: N802
            if record.levelno >= _breadcrumb_level or record.levelno >= _event_level:
                _on_record(record)
            original(self, record)

        _patching.patch(logging.Logger, "callHandlers", callHandlers)

    def setup(self, client: Any) -> None:
        global _breadcrumb_level, _event_level
        _breadcrumb_level = _NEVER if self.level is None else self.level
        _event_level = _NEVER if self.event_level is None else self.event_level


def _on_record(record: logging.LogRecord) -> None:
    if inside_sdk() or _is_ignored(record.name) or getattr(record, "_bugnet_seen", False):
        return
    client = _api.get_client()
    if client.transport is None or "logging" not in client.integrations:
        return
    with capture_internal_exceptions():
        record._bugnet_seen = True  # type: ignore[attr-defined]  # EventHandler won't resend it
        if record.levelno >= _event_level:
            capture_record(record)
        if record.levelno >= _breadcrumb_level:
            add_record_breadcrumb(record, client)


def add_record_breadcrumb(record: logging.LogRecord, client: Any) -> None:
    options = client.options
    if options.max_breadcrumbs == 0:
        return
    if options.before_breadcrumb is None:
        _scope.get_isolation_scope().add_breadcrumb((breadcrumb_from_record, record))
        return
    crumb = breadcrumb_from_record(record)
    if crumb is not None:
        crumb = options.before_breadcrumb(crumb, {"log_record": record})
    if crumb is not None:
        _scope.get_isolation_scope().add_breadcrumb(crumb)


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:
        return str(record.msg)


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: to_jsonable(value)
        for key, value in vars(record).items()
        if key not in _RECORD_FIELDS and not key.startswith("_")
    }


def level_name(levelno: int) -> str:
    if levelno in _LEVELS:
        return _LEVELS[levelno]
    return "fatal" if levelno > logging.CRITICAL else "debug" if levelno < logging.INFO else "info"


def breadcrumb_from_record(record: logging.LogRecord) -> Optional[Breadcrumb]:
    return {
        "type": "log",
        "level": level_name(record.levelno),
        "category": record.name,
        "message": _message(record),
        "timestamp": format_timestamp(record.created),
        "data": _extra(record),
    }


def capture_record(record: logging.LogRecord) -> Optional[str]:
    """Send ``record`` as an event: its exception if it has one, its template and params."""
    client = _api.get_client()
    if client.transport is None:
        return None
    args = record.args
    params: Any = list(args) if isinstance(args, tuple) else args
    event: Event = {
        "level": level_name(record.levelno),
        "logger": record.name,
        "logentry": {
            "message": str(record.msg),
            "formatted": _message(record),
            "params": to_jsonable(params) if params else [],
        },
        "timestamp": format_timestamp(record.created),
    }
    extra = _extra(record)
    if extra:
        event["extra"] = extra
    hint: Hint = {"log_record": record}
    exc_info = record.exc_info
    if exc_info and exc_info[1] is not None:
        hint["exc_info"] = exc_info
        hint["mechanism"] = {"type": "logging", "handled": True}
    elif record.stack_info or client.options.attach_stacktrace:
        from bugnet._stacktrace import current_stacktrace

        hint["stacktrace"] = current_stacktrace(client.frame_options)
    return client.capture_event(event, hint)


class EventHandler(logging.Handler):
    """A logging handler that sends each record it gets as an event (for ``dictConfig``)."""

    def emit(self, record: logging.LogRecord) -> None:
        if inside_sdk() or getattr(record, "_bugnet_seen", False) or _is_ignored(record.name):
            return
        with capture_internal_exceptions():
            capture_record(record)


class BreadcrumbHandler(logging.Handler):
    """A logging handler that keeps each record it gets as a breadcrumb (for ``dictConfig``)."""

    def emit(self, record: logging.LogRecord) -> None:
        if inside_sdk() or getattr(record, "_bugnet_seen", False) or _is_ignored(record.name):
            return
        client = _api.get_client()
        if client.transport is None:
            return
        with capture_internal_exceptions():
            add_record_breadcrumb(record, client)
