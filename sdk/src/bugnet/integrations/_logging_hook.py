"""The logging hook: records at INFO and up become breadcrumbs, at ERROR and up become events.

Every logger is seen, non-propagating ones included, because the hook sits in
``Logger.callHandlers`` (no handler to add, nothing to configure). It is installed when the app
imports ``logging`` (at once if it already has), so ``init()`` never imports it. A breadcrumb is
stored as the LogRecord itself and turned into a dict only if an event is sent, so a
``logger.info`` costs about a deque append. The public names live in
:mod:`bugnet.integrations.logging`.
"""

from __future__ import annotations

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
_ignore_cache: dict[str, bool] = {}

# LogRecord attributes that are not "extra" data (filled in when logging is patched).
_RECORD_FIELDS: set[str] = {"message", "asctime", "taskName", "_bugnet_seen"}
_LEVELS = {10: "debug", 20: "info", 30: "warning", 40: "error", 50: "fatal"}


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
        _import_hooks.when_imported("logging", _patch_logging)

    def setup(self, client: Any) -> None:
        global _breadcrumb_level, _event_level
        _breadcrumb_level = _NEVER if self.level is None else self.level
        _event_level = _NEVER if self.event_level is None else self.event_level


def _patch_logging(logging: Any) -> None:
    _RECORD_FIELDS.update(vars(logging.LogRecord("", 0, "", 0, "", (), None)))
    original = logging.Logger.callHandlers

    def callHandlers(self: Any, record: LogRecord) -> None:
        if record.levelno >= _breadcrumb_level or record.levelno >= _event_level:
            _on_record(record)
        original(self, record)

    _patching.patch(logging.Logger, "callHandlers", callHandlers)


def _on_record(record: LogRecord) -> None:
    if inside_sdk() or _is_ignored(record.name) or getattr(record, "_bugnet_seen", False):
        return
    client = _api.get_client()
    if client.transport is None or "logging" not in client.integrations:
        return
    with capture_internal_exceptions():
        record._bugnet_seen = True  # EventHandler won't resend it
        if record.levelno >= _event_level:
            capture_record(record)
        if record.levelno >= _breadcrumb_level:
            add_record_breadcrumb(record, client)


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


def _extra(record: LogRecord) -> dict[str, Any]:
    return {
        key: to_jsonable(value)
        for key, value in vars(record).items()
        if key not in _RECORD_FIELDS and not key.startswith("_")
    }


def level_name(levelno: int) -> str:
    if levelno in _LEVELS:
        return _LEVELS[levelno]
    return "fatal" if levelno > 50 else "debug" if levelno < 20 else "info"


def breadcrumb_from_record(record: LogRecord) -> Optional[Breadcrumb]:
    return {
        "type": "log",
        "level": level_name(record.levelno),
        "category": record.name,
        "message": _message(record),
        "timestamp": format_timestamp(record.created),
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
    elif record.stack_info or client.options.attach_stacktrace:
        from bugnet._stacktrace import current_stacktrace

        hint["stacktrace"] = current_stacktrace(client.frame_options)
    return client.capture_event(event, hint)
