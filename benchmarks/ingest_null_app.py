"""A WSGI app that reads the request body and answers ``200 {"id": ...}``, nothing else:
served by each candidate of ``ingest.py --servers``, it shows what the HTTP server alone
costs, apart from Bugnet's ingest. ``asgi_app`` is the same for ASGI servers."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, Callable


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH") or ""
    if length:
        stream.read(int(length))
    else:
        while stream.read(65536):  # chunked: the server ends the stream at the last chunk
            pass
    body = b'{"id":"%s"}' % uuid.uuid4().hex.encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])  # fmt: skip
    return [body]


async def asgi_app(
    scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:
        message = await receive()
        more = message["type"] == "http.request" and message.get("more_body", False)
    body = b'{"id":"%s"}' % uuid.uuid4().hex.encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
