"""``bugnet serve``: migrate, bootstrap on the first run, then serve HTTP and digest until
SIGTERM or SIGINT (both graceful: requests in flight finish, the digest finishes its batch).

HTTP is served by gunicorn's ASGI worker (pre-forked processes, each an event loop that serves
ingest itself and pages from a thread pool; see the README for the comparison that chose it),
and the digest by a process of its own; once the database is ready this process becomes
gunicorn's arbiter (``runtime/httpd.py``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, connections

from bugnet_server.runtime import httpd
from bugnet_server.runtime.bootstrap import bootstrap


class Command(BaseCommand):
    help = "Run the server (HTTP + digest) in the foreground."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default=os.environ.get("BUGNET_BIND", "127.0.0.1:8000"),
                            help="HOST:PORT to listen on (default 127.0.0.1:8000)")  # fmt: skip
        parser.add_argument(
            "--workers",
            type=int,
            help=(
                "HTTP worker processes (default: 1 on SQLite, which has one writer anyway; "
                "one per core, at least 2, on PostgreSQL)"
            ),
        )
        parser.add_argument(
            "--threads",
            type=int,
            help=(
                "threads per worker for pages, the web UI and the REST API, each holding a "
                "database connection (default 8); ingest runs on the worker's event loop"
            ),
        )
        parser.add_argument(
            "--no-digest",
            action="store_true",
            help="serve HTTP only (run `bugnet digest` elsewhere)",
        )

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
        connections.close_all()
        sys.stdout.flush()
        sys.stderr.flush()
        workers = options["workers"] or (
            1 if connection.vendor == "sqlite" else max(2, os.cpu_count() or 1)
        )
        threads = options["threads"] or 8
        argv = httpd.command(options["bind"], workers, threads,
                             digest=not options["no_digest"])  # fmt: skip
        os.execv(argv[0], argv)  # the same process, without what migrate loaded: see httpd.py
