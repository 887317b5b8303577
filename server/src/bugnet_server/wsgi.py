"""The WSGI application (what ``bugnet serve`` runs under its HTTP server).

Ingest requests (``/api/<id>/envelope/`` and ``/store/``) skip Django's middleware: sessions,
logins, CSRF and messages mean nothing to an SDK, and on the hottest path they cost more than
the ingest itself. Everything else goes through the full stack.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from typing import Any

from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bugnet_server.settings")

_INGEST_PATH = re.compile(r"^/*api/+[0-9]+/+(?:envelope|store)/*$")


class IngestHandler(WSGIHandler):
    """Django's WSGI handler with no middleware (URL routing, signals and views as usual)."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        self._middleware_chain = convert_exception_to_response(self._get_response)  # type: ignore[attr-defined]


_full = get_wsgi_application()
_ingest = IngestHandler()


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if _INGEST_PATH.match(environ.get("PATH_INFO", "")):
        return _ingest(environ, start_response)
    return _full(environ, start_response)
