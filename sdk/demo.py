"""A two-minute tour of the SDK: run with ``python3 dev.py demo``.

It starts a tiny local collector that speaks the ingest side of the Sentry protocol, points
``bugnet.init()`` at it, and shows what the SDK sends for a logged error and a crash — then
stops the collector, captures again (the event waits in the disk spool), restarts it, and shows
the spooled event arriving.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import bugnet
from bugnet._envelope import parse_envelope

received: list[dict] = []


class Collector(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        envelope = parse_envelope(body)
        received.extend(item.json() for item in envelope.items if item.type == "event")
        answer = json.dumps({"id": envelope.event_id}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.send_header("Connection", "close")  # so stopping the server really stops it
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


def serve(port: int = 0) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def show(event: dict) -> None:
    if "exception" in event:
        exc = event["exception"]["values"][-1]
        print(f"  {exc['type']}: {exc['value']}  (mechanism {exc.get('mechanism')})")
        for frame in exc.get("stacktrace", {}).get("frames", [])[-3:]:
            flag = "app" if frame.get("in_app") else "lib"
            print(f"    [{flag}] {frame['filename']}:{frame['lineno']} in {frame['function']}")
            print(f"          {frame.get('context_line', '').strip()}")
            print(f"          vars: {frame.get('vars')}")
    else:
        print(f"  message: {event.get('logentry', {}).get('formatted') or event.get('message')}")
    crumbs = [c.get("message") for c in event["breadcrumbs"]["values"]]
    print(f"  breadcrumbs: {crumbs}")
    print(
        f"  tags: {event.get('tags')}  user: {event.get('user')}  release: {event.get('release')}"
    )


def split_order(order: dict, parts: int) -> float:
    api_key = "sk_live_123"  # noqa: F841 - scrubbed before it leaves the process
    return order["total"] / parts


def main() -> None:
    server = serve()
    port = server.server_address[1]
    spool = tempfile.mkdtemp(prefix="bugnet-demo-spool-")
    dsn = f"http://0123456789abcdef0123456789abcdef@127.0.0.1:{port}/1"
    bugnet.init(dsn=dsn, release="shop@1.4.2", environment="demo", spool_dir=spool)
    bugnet.set_user({"id": "42"})
    bugnet.set_tag("feature", "checkout")

    log = logging.getLogger("shop.orders")
    logging.basicConfig(level=logging.INFO, format="app log: %(message)s")
    log.info("loading order %s", "A-1001")
    log.error("payment failed for order %s (amount %d)", "A-1001", 42)
    try:
        split_order({"total": 100}, 0)
    except ZeroDivisionError:
        bugnet.capture_exception()
    bugnet.flush(5)
    print(f"\nThe collector on port {port} received {len(received)} events:")
    for event in received:
        print()
        show(event)

    print("\nNow the server goes down; the next error waits in the disk spool.")
    server.shutdown()
    server.server_close()
    try:
        split_order({"total": 7}, 0)
    except ZeroDivisionError:
        bugnet.capture_exception()
    bugnet.flush(5)
    files = [f for _, _, names in os.walk(spool) for f in names]
    print(f"  files in {spool}: {files}")
    print("The server comes back; the spooled event is delivered.")
    before = len(received)
    server = serve(port)
    deadline = time.monotonic() + 15
    while len(received) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    print(f"  delivered: {len(received) - before} event(s)")
    server.shutdown()


if __name__ == "__main__":
    main()
