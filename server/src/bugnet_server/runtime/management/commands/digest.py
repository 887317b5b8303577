"""``bugnet digest``: run the digest worker, and the alert worker beside it, in the foreground
(``serve`` starts one for you; run more on other machines when the database is PostgreSQL)."""

from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from bugnet_server.alerts.worker import AlertWorker
from bugnet_server.digest.worker import DigestWorker


class Command(BaseCommand):
    help = "Digest queued events until SIGTERM/SIGINT (then finish the batch in hand)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--poll", type=float, default=0.2, help="seconds between empty polls")
        parser.add_argument("--batch", type=int, default=250, help="events per transaction")
        parser.add_argument("--lease", type=float, default=120.0,
                            help="seconds a claimed batch stays claimed if this worker dies")  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        worker = DigestWorker(options["poll"], options["batch"], options["lease"])
        alerts = AlertWorker()

        def stop(*_: object) -> None:
            worker.stop()
            alerts.stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, stop)
        worker.start()
        alerts.start()
        while worker.is_alive() or alerts.is_alive():
            worker.join(0.5)
            if not worker.is_alive():
                alerts.stop()  # the digest ended: stop alerting too, after what is in hand
                alerts.join(0.5)
