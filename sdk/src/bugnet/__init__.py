"""Bugnet: error tracking for Python apps, speaking the Sentry protocol.

    import bugnet
    bugnet.init(dsn="http://<key>@127.0.0.1:8000/1", release="shop@1.4.2")

Every uncaught exception, every ``logger.error`` (with the logs before it as breadcrumbs) and
whatever you pass to :func:`capture_exception` / :func:`capture_message` is sent in the
background, with its stack, source lines, locals and scope data.
"""

from __future__ import annotations

from bugnet._api import (
    add_breadcrumb,
    capture_event,
    capture_exception,
    capture_message,
    flush,
    get_client,
    init,
    is_initialized,
    last_event_id,
    set_context,
    set_extra,
    set_level,
    set_tag,
    set_tags,
    set_user,
)
from bugnet._client import Client
from bugnet._dsn import BadDsn
from bugnet._scope import (
    Scope,
    get_current_scope,
    get_global_scope,
    get_isolation_scope,
    isolation_scope,
    new_scope,
)
from bugnet._scrub import EventScrubber
from bugnet._transport import Transport
from bugnet._version import __version__

__all__ = [
    "BadDsn",
    "Client",
    "EventScrubber",
    "Scope",
    "Transport",
    "__version__",
    "add_breadcrumb",
    "capture_event",
    "capture_exception",
    "capture_message",
    "flush",
    "get_client",
    "get_current_scope",
    "get_global_scope",
    "get_isolation_scope",
    "init",
    "is_initialized",
    "isolation_scope",
    "last_event_id",
    "new_scope",
    "set_context",
    "set_extra",
    "set_level",
    "set_tag",
    "set_tags",
    "set_user",
]
