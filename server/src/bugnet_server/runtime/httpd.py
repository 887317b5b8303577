"""What ``bugnet serve`` becomes once the database is migrated: gunicorn's arbiter, watching
its worker processes (the app) and the digest process (``bugnet digest``).

The workers are gunicorn's ASGI worker (an event loop, uvloop where installed) running
``bugnet_server.asgi``: ingest on the loop with one writer thread that commits for all waiting
requests, pages in a pool of ``--threads`` threads. Measured with ``benchmarks/ingest.py`` on
2 cores, the threaded worker it replaced (gthread, a thread per request) spent about twice the
CPU per event, most of it handing the GIL and the commit around between request threads.

``serve`` replaces its own process with this module (``os.execv``: same pid, so signals sent
to ``bugnet serve`` reach the arbiter) so that the arbiter, which only watches its children,
does not carry Django and everything ``migrate`` loaded: it stays a small process (~25 MB).
Each worker loads the app itself after the fork.

The digest is a process of its own rather than a thread in a worker: measured with
``benchmarks/ingest.py``, sharing a worker's GIL made both the ingest and the digest slower
(2.3 ms of CPU per event instead of 1.8, 470 events/s end to end instead of 731).

SIGTERM and SIGINT are graceful: workers stop accepting and finish the requests in flight, the
digest finishes its batch, then everything exits with status 0. The digest runs at a lower CPU
priority (``DIGEST_NICENESS``). A digest process that dies is started again (after 1 s,
doubling up to a minute while it keeps dying).

This module imports nothing of Django at module level: the arbiter must stay small.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

GRACEFUL_SECONDS = 30
# The digest runs at a lower CPU priority than the HTTP workers: when both want the CPU, an SDK
# gets its answer first and the digest catches up as soon as the burst is over (still getting a
# third of a core's share meanwhile). Measured with benchmarks/ingest.py on 2 cores: about 15%
# more events accepted per second and end to end.
DIGEST_NICENESS = 5
DIGEST_COMMAND = [sys.executable, "-m", "bugnet_server.cli", "digest", "--skip-checks"]


def command(bind: str, workers: int, threads: int, digest: bool) -> list[str]:
    """The argv that starts this module with these settings."""
    argv = [sys.executable, "-m", "bugnet_server.runtime.httpd", "--bind", bind,
            "--workers", str(workers), "--threads", str(threads)]  # fmt: skip
    return argv if digest else [*argv, "--no-digest"]


def _json_error(status: int, message: str, extra_headers: Any = ()) -> bytes:
    """gunicorn's answer to a request it cannot parse (a 431 for huge headers, a 414, a bad
    chunk...), as JSON with a ``detail`` like every other refusal of ours, not plain text."""
    from http import HTTPStatus

    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    detail = f"{reason}: {message}" if message and message != reason else reason
    body = json.dumps({"detail": detail, "causes": []}).encode()
    extra = "".join(f"{name}: {value}\r\n" for name, value in extra_headers)
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n")  # fmt: skip
    return head.encode("latin-1") + body


def run(bind: str, workers: int, threads: int, digest: bool) -> None:
    from gunicorn.app.base import BaseApplication
    from gunicorn.arbiter import Arbiter
    from gunicorn.asgi.protocol import ASGIProtocol

    # The one place we change gunicorn's behaviour: its refusals of what it cannot parse.
    def send_error_response(self: Any, status: int, message: str, extra_headers: Any = ()) -> None:
        self._safe_write(_json_error(status, str(message), extra_headers))

    # A client that half-closes its side mid-body (sends what it has, then shuts down writing)
    # still gets told what was wrong with it, as the threaded worker did: on EOF asyncio would
    # close the whole connection unless told otherwise.
    def eof_received(self: Any) -> bool:
        if self.reader:
            self.reader.feed_eof()
        if self._body_receiver is not None:
            self._body_receiver.signal_disconnect()
        return True

    ASGIProtocol._send_error_response = send_error_response
    ASGIProtocol.eof_received = eof_received

    class BugnetArbiter(Arbiter):  # type: ignore[misc]
        digest_process: subprocess.Popen[bytes] | None = None
        digest_due = 0.0  # when to start the digest (again)
        digest_delay = 1.0
        digest_started = 0.0

        # gunicorn treats SIGINT as "quit now"; we finish requests in flight for both signals.
        def handle_int(self) -> None:
            self.handle_term()

        def manage_workers(self) -> None:  # the arbiter's loop calls this about every second
            super().manage_workers()
            if digest and self.digest_process is None and time.monotonic() >= self.digest_due:
                self.digest_process = subprocess.Popen(DIGEST_COMMAND)
                try:
                    os.setpriority(os.PRIO_PROCESS, self.digest_process.pid, DIGEST_NICENESS)
                except OSError:
                    pass  # then it runs at ours: slower ingest under load, nothing worse
                self.digest_started = time.monotonic()

        def reap_workers(self) -> None:
            # gunicorn reaps every child that exited; look at ours before it does.
            process = self.digest_process
            if process is not None and process.poll() is not None:
                if time.monotonic() - self.digest_started > 60.0:
                    self.digest_delay = 1.0  # it had been running fine: not a crash loop
                self.log.error("the digest process exited with %s; starting it again in %.0f s",
                               process.returncode, self.digest_delay)  # fmt: skip
                self.digest_process = None
                self.digest_due = time.monotonic() + self.digest_delay
                self.digest_delay = min(self.digest_delay * 2, 60.0)
            super().reap_workers()

        def stop(self, graceful: bool = True) -> None:
            process, self.digest_process = self.digest_process, None
            self.digest_due = float("inf")
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)  # it finishes its batch, then exits
            super().stop(graceful)
            if process is not None:
                try:
                    process.wait(GRACEFUL_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    class Application(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            settings: dict[str, Any] = {
                "bind": [bind],
                "workers": workers,
                "worker_class": "asgi",
                "asgi_lifespan": "on",
                "http_parser": "python",
                "graceful_timeout": GRACEFUL_SECONDS,
                "timeout": 60,
                "keepalive": 5,
                "accesslog": None,
                "errorlog": "-",
                "loglevel": "warning",
                "control_socket_disable": True,
                "proc_name": "bugnet",
            }
            for name, value in settings.items():
                if name in self.cfg.settings:
                    self.cfg.set(name, value)

        def load(self) -> Any:
            from bugnet_server.asgi import Application

            return Application(threads)

    BugnetArbiter(Application()).run()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bugnet serve (HTTP)")
    parser.add_argument("--bind", required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--no-digest", action="store_true")
    options = parser.parse_args(argv)
    run(options.bind, options.workers, options.threads, not options.no_digest)


if __name__ == "__main__":
    main()
