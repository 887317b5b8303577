"""The logging hook: records at INFO and up become breadcrumbs, at ERROR and up become events.

Every logger is seen, non-propagating ones included, because the hook sits in
``Logger.callHandlers`` (no handler to add, nothing to configure). It is installed when the app
imports ``logging`` (at once if it already has), so ``init()`` never imports it. A breadcrumb is
stored as the LogRecord itself and turned into a dict only if an event is sent, so a
``logger.info`` costs about a deque append. The public names live in
:mod:`bugnet.integrations.logging`.
"""

from __future__ import annotations

import sys

from bugnet import _api, _import_hooks, _patching, _scope
from bugnet._guard import capture_internal_exceptions, inside_sdk
from bugnet._serialize import to_jsonable
from bugnet._timestamps import format_timestamp
from bugnet.integrations import Integration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from logging import LogRecord
    from typing import Any, Optional

    from bugnet.types import Breadcrumb, Event, Hint

DEFAULT_LEVEL = 20  # logging.INFO
DEFAULT_EVENT_LEVEL = 40  # logging.ERROR
_NEVER = 1 << 30

# Set by the active client's LoggingIntegration; read on every log call.
_breadcrumb_level = _NEVER
_event_level = _NEVER
_ignored_prefixes: set[str] = {"bugnet"}
_ignored_patterns: list[str] = []
_ignore_cache: dict[str, bool] = {}

# Marks on a record, so a record seen twice (by the hook and an EventHandler, or by two
# handlers) is sent once and kept once.
SENT_AS_EVENT = "_bugnet_event"
KEPT_AS_BREADCRUMB = "_bugnet_breadcrumb"

# LogRecord attributes that are not "extra" data (see _standard_fields).
_RECORD_FIELDS: set[str] = set()


def ignore_logger(name: str) -> None:
    """Never turn records of logger ``name`` (or its children) into breadcrumbs or events.

    A name with ``*``, ``?`` or ``[`` is a shell-style pattern, as sentry-sdk takes it
    (``"django.security.*"``): it silences the loggers whose whole name matches.
    """
    if any(char in name for char in "*?["):
        _ignored_patterns.append(name)
    else:
        _ignored_prefixes.add(name)
    _ignore_cache.clear()


def _is_ignored(name: str) -> bool:
    cached = _ignore_cache.get(name)
    if cached is None:
        cached = any(name == p or name.startswith(p + ".") for p in _ignored_prefixes)
        if not cached and _ignored_patterns:
            from fnmatch import fnmatchcase

            cached = any(fnmatchcase(name, pattern) for pattern in _ignored_patterns)
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
        _import_hooks.when_imported("logging", _patch_logging)

    def setup(self, client: Any) -> None:
        global _breadcrumb_level, _event_level
        _breadcrumb_level = _NEVER if self.level is None else self.level
        _event_level = _NEVER if self.event_level is None else self.event_level


def _patch_logging(logging: Any) -> None:
    original = logging.Logger.callHandlers

    def callHandlers(self: Any, record: LogRecord) -> None:
        if record.levelno < _breadcrumb_level and record.levelno < _event_level:
            original(self, record)
            return
        keep = _on_record(record)
        try:
            original(self, record)
        finally:
            # After the handlers, as sentry-sdk does: an event a handler sends for this record
            # (an EventHandler at a lower level than ours) does not list it as its own breadcrumb.
            if keep:
                with capture_internal_exceptions():
                    add_record_breadcrumb(record, _api.get_client())

    _patching.patch(logging.Logger, "callHandlers", callHandlers)


def _on_record(record: LogRecord) -> bool:
    """Send ``record`` as an event if its level says so; True if it is to be kept as a
    breadcrumb once the handlers have run."""
    if inside_sdk() or _is_ignored(record.name):
        return False
    client = _api.get_client()
    if client.transport is None or "logging" not in client.integrations:
        return False
    with capture_internal_exceptions():
        if record.levelno >= _event_level and not getattr(record, SENT_AS_EVENT, False):
            setattr(record, SENT_AS_EVENT, True)
            capture_record(record)
        if record.levelno >= _breadcrumb_level and not getattr(record, KEPT_AS_BREADCRUMB, False):
            setattr(record, KEPT_AS_BREADCRUMB, True)  # a BreadcrumbHandler won't keep it again
            return True
    return False


def add_record_breadcrumb(record: LogRecord, client: Any) -> None:
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


def _message(record: LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:
        return str(record.msg)


def _standard_fields() -> set[str]:
    # Computed on first use, not when logging is patched: EventHandler and BreadcrumbHandler
    # work without the hook (default_integrations=False). A record exists, so logging is loaded.
    if not _RECORD_FIELDS:
        import logging

        fields = set(vars(logging.LogRecord("", 0, "", 0, "", (), None)))
        _RECORD_FIELDS.update(fields | {"message", "asctime", "taskName"})
    return _RECORD_FIELDS


def _extra(record: LogRecord) -> dict[str, Any]:
    standard = _standard_fields()
    return {
        key: to_jsonable(value)
        for key, value in vars(record).items()
        if key not in standard and not key.startswith("_")
    }


def level_name(levelno: int) -> str:
    """The protocol level of a logging level; a custom level counts as the standard one below
    it (Relay accepts only debug, info, warning, error and fatal)."""
    if levelno >= 50:
        return "fatal"
    if levelno >= 40:
        return "error"
    if levelno >= 30:
        return "warning"
    return "info" if levelno >= 20 else "debug"


def _caller_frame() -> Any:
    """The innermost frame outside logging and the SDK: where the app logged the record."""
    frame: Any = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__")
        if not (isinstance(name, str) and name.partition(".")[0] in ("logging", "bugnet")):
            break
        frame = frame.f_back
    return frame


def breadcrumb_from_record(record: LogRecord) -> Optional[Breadcrumb]:
    """The breadcrumb for ``record``. Its timestamp stays epoch seconds, like other stored
    breadcrumbs', so merging scopes sorts them together; it is formatted when sent."""
    return {
        "type": "log",
        "level": level_name(record.levelno),
        "category": record.name,
        "message": _message(record),
        "timestamp": record.created,
        "data": _extra(record),
    }


def capture_record(record: LogRecord) -> Optional[str]:
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
    elif record.stack_info or exc_info or client.options.attach_stacktrace:
        # stack_info=True, or logger.exception() with no exception being handled
        from bugnet._stacktrace import frames_from_stack

        hint["stacktrace"] = frames_from_stack(_caller_frame(), client.frame_options)
    return client.capture_event(event, hint)
