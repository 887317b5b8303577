"""Logging: records at INFO and up become breadcrumbs, at ERROR and up become events.

On by default; pass ``LoggingIntegration(level=..., event_level=...)`` to change the levels
(None turns either off) and call :func:`ignore_logger` to silence a logger. ``EventHandler`` and
``BreadcrumbHandler`` are ordinary ``logging.Handler`` classes for ``dictConfig`` users who
prefer explicit configuration.
"""

from __future__ import annotations

import logging

from bugnet import _api
from bugnet._guard import capture_internal_exceptions, inside_sdk
from bugnet.integrations._logging_hook import (
    KEPT_AS_BREADCRUMB,
    SENT_AS_EVENT,
    LoggingIntegration,
    _is_ignored,
    add_record_breadcrumb,
    breadcrumb_from_record,
    capture_record,
    ignore_logger,
)

__all__ = [
    "BreadcrumbHandler",
    "EventHandler",
    "LoggingIntegration",
    "breadcrumb_from_record",
    "capture_record",
    "ignore_logger",
]


class EventHandler(logging.Handler):
    """A logging handler that sends each record it gets as an event (for ``dictConfig``).

    A record the logging integration (or another EventHandler) already sent is not sent again.
    """

    def emit(self, record: logging.LogRecord) -> None:
        if inside_sdk() or getattr(record, SENT_AS_EVENT, False) or _is_ignored(record.name):
            return
        with capture_internal_exceptions():
            setattr(record, SENT_AS_EVENT, True)
            capture_record(record)


class BreadcrumbHandler(logging.Handler):
    """A logging handler that keeps each record it gets as a breadcrumb (for ``dictConfig``).

    A record the logging integration (or another BreadcrumbHandler) already keeps is not kept
    twice. List it after an EventHandler, so an event does not carry its own record.
    """

    def emit(self, record: logging.LogRecord) -> None:
        if inside_sdk() or getattr(record, KEPT_AS_BREADCRUMB, False) or _is_ignored(record.name):
            return
        client = _api.get_client()
        if client.transport is None:
            return
        with capture_internal_exceptions():
            setattr(record, KEPT_AS_BREADCRUMB, True)
            add_record_breadcrumb(record, client)
