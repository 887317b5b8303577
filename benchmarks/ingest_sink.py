"""The ingest benchmark's null target: an ``http.server.ThreadingHTTPServer`` in its own
process (one thread per connection, keep-alive) that reads each POST body and answers
``200 {"id": ...}``; a GET answers 200 too (the load warms its connections with one).

    python ingest_sink.py     # prints "PORT <n>", serves until SIGTERM

It does none of a server's work, so what the load reaches against it is the ceiling of the
harness on this machine: the client's own cost plus the cheapest Python HTTP server.
"""

from __future__ import annotations

import signal
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else the body waits for the client's delayed ACK

    def do_POST(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while size := int(self.rfile.readline().split(b";")[0], 16):
                self.rfile.read(size + 2)
            self.rfile.readline()
        else:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer(b'{"id":"%s"}' % uuid.uuid4().hex.encode())

    def do_GET(self) -> None:
        self._answer(b'{"status":"ok"}')

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Sink(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops SYNs when 16 clients connect at once


def main() -> None:
    sink = Sink(("127.0.0.1", 0), _Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=sink.shutdown).start())
    print(f"PORT {sink.server_address[1]}", flush=True)
    sink.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
