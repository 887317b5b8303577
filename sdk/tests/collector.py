"""A real HTTP server that speaks the ingest side of the Sentry protocol, for the SDK's tests.

It records every envelope it receives (decompressed and parsed with the SDK's parser, plus the
raw request), answers what the test tells it to (200, 429 with rate-limit headers, 500...), and
can be stopped and restarted on the same port to play a server that goes down and comes back.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional

from bugnet._envelope import Envelope, parse_envelope

KEY = "0123456789abcdef0123456789abcdef"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    envelope: Envelope

    @property
    def events(self) -> list[dict[str, Any]]:
        return [item.json() for item in self.envelope.items if item.type == "event"]

    @property
    def item_types(self) -> list[str]:
        return [item.type for item in self.envelope.items]


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Collector:
    """Start with :meth:`start`; ``dsn`` points at it. ``reply`` decides each answer."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.received: list[Received] = []
        self.reply: Callable[[Received], Reply] = lambda r: Reply()
        self._server: Optional[ThreadingHTTPServer] = None
        self._cond = threading.Condition()
        self._connections: set[socket.socket] = set()

    @property
    def dsn(self) -> str:
        return f"http://{KEY}@127.0.0.1:{self.port}/42"

    def start(self) -> Collector:
        collector = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with collector._cond:
                    collector._connections.add(self.connection)

            def finish(self) -> None:
                with collector._cond:
                    collector._connections.discard(self.connection)
                super().finish()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                encoding = self.headers.get("Content-Encoding", "")
                body = gzip.decompress(raw) if encoding == "gzip" else raw
                if encoding == "deflate":
                    body = zlib.decompress(raw)
                received = Received(self.path, dict(self.headers), body, parse_envelope(body))
                reply = collector.reply(received)
                if reply.delay:
                    time.sleep(reply.delay)
                if 200 <= reply.status < 300:
                    with collector._cond:
                        collector.received.append(received)
                        collector._cond.notify_all()
                payload = json.dumps({"id": received.envelope.event_id}).encode()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        """Stop listening and cut the connections clients kept alive: a server that is down."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._cond:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def events(self) -> list[dict[str, Any]]:
        with self._cond:
            return [event for r in self.received for event in r.events]

    def wait_for(self, predicate: Callable[[Collector], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.1))
        return True

    def wait_for_events(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        self.wait_for(lambda c: len(c.events()) >= count, timeout)
        return self.events()


def free_port() -> int:
    """A port where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SilentServer:
    """Accepts connections (the kernel does, into the backlog) but never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]

    @property
    def dsn(self) -> str:
        return f"http://{KEY}@127.0.0.1:{self.port}/42"

    def close(self) -> None:
        self.sock.close()
