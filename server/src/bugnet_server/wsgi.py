"""The WSGI application, for WSGI servers; ``bugnet serve`` runs ``bugnet_server.asgi``, which
serves ingest on its event loop and everything else through this, in a thread pool.

Ingest requests (``/api/<id>/envelope/`` and ``/store/``) go to ``bugnet_server.ingest.app``, a
plain WSGI app: sessions, logins, CSRF and URL routing mean nothing to an SDK, and on the
hottest path they cost more than the ingest itself. So does ``/_health/``. Everything else
goes through Django.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bugnet_server.settings")

_django = get_wsgi_application()

# These need Django set up.
from bugnet_server.ingest.app import PATH, IngestApp  # noqa: E402
from bugnet_server.runtime import health  # noqa: E402

_ingest = IngestApp()


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if PATH.fullmatch(path):
        return _ingest(environ, start_response)
    if path in health.PATHS:
        return health.health(environ, start_response)
    return _django(environ, start_response)
