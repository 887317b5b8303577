"""Concurrent requests against real HTTP servers, for the web integrations' tests."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import make_server


@contextmanager
def threaded_wsgi_server(app: Any) -> Iterator[str]:
    """Serve ``app`` on a real threaded WSGI server (werkzeug's); yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()


def get_all(urls: list[str]) -> dict[str, int]:
    """GET every URL at once, each from its own thread; the status each answered."""
    statuses: dict[str, int] = {}

    def get(url: str) -> None:
        try:
            with urllib.request.urlopen(url, timeout=20) as response:
                statuses[url] = response.status
        except urllib.error.HTTPError as exc:
            statuses[url] = exc.code

    clients = [threading.Thread(target=get, args=(url,)) for url in urls]
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    return statuses
