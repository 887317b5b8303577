"""The ASGI application that ``bugnet serve``'s workers run (gunicorn's ASGI worker).

Ingest (``/api/<id>/envelope/`` and ``/store/``) is served on the event loop itself
(``ingest/asgi.py``): the hottest path, where a thread per request cost more than the work.
Everything else (the web UI, the REST API, ``/_health/``) is ``bugnet_server.wsgi`` run in a
pool of ``threads`` threads by a2wsgi: Django's views are synchronous, and pages are few.
"""

from __future__ import annotations

import gc
import os
from typing import Any

from a2wsgi import WSGIMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bugnet_server.settings")

# Sets Django up; the ingest modules need it.
from bugnet_server import wsgi
from bugnet_server.ingest.app import PATH
from bugnet_server.ingest.asgi import Ingest, Receive, Scope, Send


class Application:
    def __init__(self, threads: int = 16) -> None:
        self.ingest = Ingest()
        self.pages = WSGIMiddleware(wsgi.application, workers=threads)  # type: ignore[arg-type]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if PATH.fullmatch(scope["path"]):
                await self.ingest(scope, receive, send)
            else:
                await self.pages(scope, receive, send)  # type: ignore[arg-type]
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1003})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message: dict[str, Any] = await receive()
            if message["type"] == "lifespan.startup":
                gc.freeze()  # what start-up made lives as long as the worker (as in ``digest``)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # Requests in flight have finished: commit what they handed over, then go.
                self.ingest.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


application = Application()
