"""``/_health/``: this process answers and its database does (200), or it does not (503).

A plain WSGI app, like ingest: load balancers and supervisors ask often, and a worker that only
ever answered them need not load the web UI's and the API's code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.db import connection

logger = logging.getLogger("bugnet_server.health")
PATHS = {"/_health", "/_health/"}


def health(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        status, content = "200 OK", b'{"status":"ok"}'
    except Exception as exc:
        logger.warning("health check: the database does not answer: %s", exc)
        status, content = "503 Service Unavailable", b'{"status":"database unavailable"}'
    finally:
        connection.close_if_unusable_or_obsolete()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(content)))])  # fmt: skip
    return [content]
