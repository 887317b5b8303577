"""A null sink for SDK benchmarks: an HTTP server on 127.0.0.1 that takes any envelope.

It answers every POST with ``200 {"id": ...}`` like a Sentry-protocol server, counts envelopes
and bytes per project id (``/api/<project>/envelope/``), and keeps the shape of the first error
event each project sends, so a benchmark can check that the SDKs it compares send the same thing.
"""

from __future__ import annotations

import gzip
import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional


class _SinkHandler(BaseHTTPRequestHandler):
    """Reads the body of any POST and answers 200 with an event id, like a server would."""

    protocol_version = "HTTP/1.1"
    # Answer at once: with Nagle on, the body written after the headers would wait for the
    # client's delayed ACK (40 ms on Linux), and the sink would set the pace of delivery.
    disable_nagle_algorithm = True
    server: NullSink

    def do_POST(self) -> None:
        envelope = self._read_body()
        self.server.record(self.path, envelope, self.headers.get("Content-Encoding", ""))
        answer = json.dumps({"id": uuid.uuid4().hex}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0], 16):
            chunks.append(self.rfile.read(size + 2)[:-2])
        self.rfile.readline()
        return b"".join(chunks)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class NullSink(ThreadingHTTPServer):
    """Counts envelopes and bytes per project id (one project per worker run), and keeps the
    shape of the first event each project sends, to check that both sides send the same thing."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SinkHandler)
        self.received: Counter[str] = Counter()
        self.wire_bytes: Counter[str] = Counter()
        self.event_shape: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()
        self._projects = 0

    def record(self, path: str, body: bytes, encoding: str) -> None:
        parts = path.strip("/").split("/")  # api/<project>/envelope
        project = parts[1] if len(parts) > 1 else path
        with self._lock:
            self.received[project] += 1
            self.wire_bytes[project] += len(body)
            if project in self.event_shape:
                return
        shape = event_shape(gzip.decompress(body) if encoding == "gzip" else body)
        if shape is not None:
            with self._lock:
                self.event_shape.setdefault(project, shape)

    def new_dsn(self) -> tuple[str, str]:
        """A DSN for one worker run, and the project id its envelopes are counted under."""
        with self._lock:
            self._projects += 1
            project = str(self._projects)
        return f"http://public@127.0.0.1:{self.server_address[1]}/{project}", project


def envelope_items(data: bytes) -> Iterator[tuple[dict[str, Any], bytes]]:
    """The (item header, payload) pairs of a Sentry envelope."""
    _, _, rest = data.partition(b"\n")
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        header = json.loads(line)
        length = header.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length + 1 :]
        yield header, payload


def event_shape(envelope: bytes) -> Optional[dict[str, int]]:
    """Frames, frames with locals and size of the envelope's error event; None if it has none."""
    for header, payload in envelope_items(envelope):
        if header.get("type") != "event":
            continue
        values = json.loads(payload).get("exception", {}).get("values") or [{}]
        frames = values[-1].get("stacktrace", {}).get("frames", [])
        with_vars = sum(1 for frame in frames if frame.get("vars"))
        return {"frames": len(frames), "frames_with_vars": with_vars, "event_bytes": len(payload)}
    return None


def start_sink() -> NullSink:
    sink = NullSink()
    threading.Thread(target=sink.serve_forever, name="null-sink", daemon=True).start()
    return sink
