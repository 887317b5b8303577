"""``bugnet tail``: new events, live, one line each (coloured on a terminal) or as JSON lines.

Two sources give the same ``EventLine``s in the order they were stored: ``LocalSource`` reads
this server's database, ``RemoteSource`` polls a server's REST API
(``GET /api/0/projects/<org>/<project>/events/``). ``follow`` polls one until interrupted.

Only ``local`` touches the models, and only where it uses them: the rest (formatting, the
loop, the remote source) needs no configured Django, and is unit-tested without one.
"""

from __future__ import annotations

from bugnet_server.runtime.tail.follow import (
    Source,
    TailError,
    Unreachable,
    follow,
    pick_project,
)
from bugnet_server.runtime.tail.lines import (
    LEVELS,
    EventLine,
    as_json,
    as_text,
    levels_from,
    printer,
    reader_gone,
    wants_color,
)
from bugnet_server.runtime.tail.local import LocalSource
from bugnet_server.runtime.tail.remote import ApiClient, RemoteSource

__all__ = [
    "LEVELS",
    "ApiClient",
    "EventLine",
    "LocalSource",
    "RemoteSource",
    "Source",
    "TailError",
    "Unreachable",
    "as_json",
    "as_text",
    "follow",
    "levels_from",
    "pick_project",
    "printer",
    "reader_gone",
    "wants_color",
]
