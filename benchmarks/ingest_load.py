"""The ingest benchmark's load: N envelopes from T threads, one keep-alive connection each.

Run as its own process by ``ingest.py`` (so the parent's polling of the target never takes
the GIL from the senders)::

    python ingest_load.py --port P --project 1 --key KEY --bodies FILE [--threads 16]
                          [--repeat R]   # send the bodies R times (only for targets that keep
                                         # nothing: a server would drop the repeats as duplicates)

It warms every connection with one GET of ``--warm-path`` (not timed), starts all threads
together, and prints one JSON line: wall-clock start and end of sending, how many requests
got a 200, the other answers by status, and per-request latency percentiles. A request's
latency runs from the start of writing the request to the end of reading the answer.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import socket
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ingest_events import auth_header, read_bodies

TIMEOUT = 60.0


class Connection(http.client.HTTPConnection):
    """Keep-alive HTTP/1.1 with TCP_NODELAY, as SDK transports set it."""

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def envelope_headers(key: str) -> dict[str, str]:
    return {
        "Content-Type": "application/x-sentry-envelope",
        "Content-Encoding": "gzip",
        "User-Agent": "sentry.python/2.75.0",
        "X-Sentry-Auth": auth_header(key),
    }


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


class Load:
    """Sends every body once, from ``threads`` threads that take the next body in turn."""

    def __init__(self, port: int, project: str, key: str, bodies: list[bytes], threads: int):
        self.port = port
        self.path = f"/api/{project}/envelope/"
        self.headers = envelope_headers(key)
        self.bodies = bodies
        self.threads = threads
        self._next = itertools.count()
        self._lock = threading.Lock()
        self.statuses: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.first_error = ""

    def run(self, warm_path: str) -> dict[str, Any]:
        connections = [
            Connection("127.0.0.1", self.port, timeout=TIMEOUT) for _ in range(self.threads)
        ]
        for conn in connections:
            _warm(conn, warm_path)
        start_line = threading.Barrier(self.threads + 1)
        workers = [
            threading.Thread(target=self._send_all, args=(conn, start_line), daemon=True)
            for conn in connections
        ]
        for worker in workers:
            worker.start()
        start_line.wait()
        wall_start, start = time.time(), time.perf_counter()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - start
        for conn in connections:
            conn.close()
        latencies = sorted(self.latencies)
        accepted = self.statuses.get("200", 0)
        return {
            "wall_start": wall_start,
            "wall_end": wall_start + elapsed,
            "seconds": elapsed,
            "sent": len(self.bodies),
            "accepted": accepted,
            "errors": len(self.bodies) - accepted,
            "statuses": dict(self.statuses),
            "first_error": self.first_error,
            "accepted_per_s": accepted / elapsed if elapsed else 0.0,
            "p50_ms": percentile(latencies, 0.50) * 1000,
            "p90_ms": percentile(latencies, 0.90) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "max_ms": latencies[-1] * 1000 if latencies else float("nan"),
        }

    def _send_all(self, conn: Connection, start_line: threading.Barrier) -> None:
        mine: list[float] = []
        statuses: Counter[str] = Counter()
        start_line.wait()
        while (index := next(self._next)) < len(self.bodies):
            body = self.bodies[index]
            began = time.perf_counter()
            try:
                conn.request("POST", self.path, body=body, headers=self.headers)
                response = conn.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()  # the next request reconnects
                statuses[type(exc).__name__] += 1
                self._note(f"{type(exc).__name__}: {exc}")
                continue
            mine.append(time.perf_counter() - began)
            statuses[str(response.status)] += 1
            if response.status != 200:
                self._note(f"{response.status}: {answer[:300]!r}")
        with self._lock:
            self.latencies.extend(mine)
            self.statuses.update(statuses)

    def _note(self, error: str) -> None:
        with self._lock:
            self.first_error = self.first_error or error


def _warm(conn: Connection, path: str) -> None:
    try:
        conn.request("GET", path)
        conn.getresponse().read()
    except (OSError, http.client.HTTPException):
        conn.close()


def chunked_post(port: int, project: str, key: str, body: bytes) -> tuple[int, str]:
    """POST ``body`` with ``Transfer-Encoding: chunked`` and no Content-Length, as the Node
    SDK does; returns the status and the start of the answer (status 0: no answer)."""
    conn = Connection("127.0.0.1", port, timeout=30)
    third = max(1, len(body) // 3)
    chunks = [body[:third], body[third : 2 * third], body[2 * third :]]
    try:
        conn.request("POST", f"/api/{project}/envelope/", body=iter(chunks),
                     headers=envelope_headers(key), encode_chunked=True)  # fmt: skip
        response = conn.getresponse()
        return response.status, response.read()[:200].decode(errors="replace")
    except (OSError, http.client.HTTPException) as exc:
        return 0, f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--project", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--bodies", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--warm-path", default="/")
    parser.add_argument("--repeat", type=int, default=1, help="send the bodies this many times")
    args = parser.parse_args()
    bodies = read_bodies(args.bodies) * args.repeat
    load = Load(args.port, args.project, args.key, bodies, args.threads)
    print(json.dumps(load.run(args.warm_path)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
