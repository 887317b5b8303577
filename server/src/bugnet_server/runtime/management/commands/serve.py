"""``bugnet serve``: migrate, bootstrap on the first run, then serve HTTP and digest until
SIGTERM or SIGINT (both graceful: requests in flight finish, the digest finishes its batch).

HTTP is served by gunicorn (pre-forked worker processes with threads, so ingest uses every
core; see the README for the comparison that chose it); the digest worker runs as a child
process supervised here.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connections

from bugnet_server.runtime.bootstrap import bootstrap

logger = logging.getLogger("bugnet_server.serve")


class Command(BaseCommand):
    help = "Run the server (HTTP + digest) in the foreground."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default=os.environ.get("BUGNET_BIND", "127.0.0.1:8000"),
                            help="HOST:PORT to listen on (default 127.0.0.1:8000)")  # fmt: skip
        parser.add_argument("--workers", type=int, default=max(2, os.cpu_count() or 1))
        parser.add_argument("--threads", type=int, default=8)
        parser.add_argument("--no-digest", action="store_true", help="serve HTTP only")

    def handle(self, *args: Any, **options: Any) -> None:
        if not os.environ.get("BUGNET_BASE_URL"):
            # Without a configured URL, DSNs and links point at where we listen.
            host, _, port = options["bind"].rpartition(":")
            if host in ("0.0.0.0", "::", "[::]", ""):
                host = "127.0.0.1"
            settings.BASE_URL = os.environ["BUGNET_BASE_URL"] = f"http://{host}:{port}"
        call_command("migrate", interactive=False, verbosity=0)
        first = bootstrap()
        url = settings.BASE_URL
        if first is not None:
            self.stdout.write(
                "\nBugnet is set up.\n"
                f"  URL:      {url}\n"
                f"  login:    {first.email}\n"
                f"  password: {first.password}   (shown once; change it after logging in)\n"
                f"  DSN:      {first.dsn}\n"
            )
        self.stdout.write(
            f"serving on http://{options['bind']} (data in {settings.BUGNET.data_dir})"
        )
        self.stdout.flush()
        connections.close_all()  # nothing open may cross the fork into the workers
        digest = None if options["no_digest"] else DigestSupervisor()
        try:
            run_gunicorn(options["bind"], options["workers"], options["threads"])
        finally:
            if digest is not None:
                digest.stop()


class DigestSupervisor(threading.Thread):
    """Runs ``bugnet digest`` as a child process and restarts it if it dies."""

    def __init__(self) -> None:
        super().__init__(name="bugnet-digest-supervisor", daemon=True)
        self._stopping = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._spawn()
        self.start()

    def _spawn(self) -> None:
        self._process = subprocess.Popen([sys.executable, "-m", "bugnet_server.cli", "digest"])

    def run(self) -> None:
        delay = 1.0
        while not self._stopping.wait(1.0):
            process = self._process
            if process is not None and process.poll() is not None and not self._stopping.is_set():
                logger.error("the digest worker exited with %s; restarting it in %.0f s",
                             process.returncode, delay)  # fmt: skip
                if self._stopping.wait(delay):
                    break
                delay = min(delay * 2, 60.0)
                self._spawn()

    def stop(self) -> None:
        """Ask the digest to finish its batch and exit; wait for it."""
        self._stopping.set()
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_gunicorn(bind: str, workers: int, threads: int) -> None:
    from gunicorn.app.base import BaseApplication
    from gunicorn.arbiter import Arbiter

    class GracefulArbiter(Arbiter):  # type: ignore[misc]
        # gunicorn treats SIGINT as "quit now"; we finish requests in flight for both signals.
        def handle_int(self) -> None:
            self.handle_term()

    class Application(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for name, value in {
                "bind": [bind],
                "workers": workers,
                "threads": threads,
                "worker_class": "gthread",
                "graceful_timeout": 30,
                "timeout": 60,
                "keepalive": 5,
                "accesslog": None,
                "errorlog": "-",
                "loglevel": "warning",
                "control_socket_disable": True,
            }.items():
                if name in self.cfg.settings:
                    self.cfg.set(name, value)

        def load(self) -> Any:
            from bugnet_server.wsgi import application

            return application

    GracefulArbiter(Application()).run()
