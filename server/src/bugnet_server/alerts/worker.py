"""The alert worker: a thread of the digest process (``bugnet digest``, which ``bugnet serve``
runs), so sending never slows ingest or the digest itself. Each pass turns the digest's
signals into alerts, looks for spikes, and sends what is due; it rests when there was nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.db import close_old_connections, connection
from django.utils import timezone

from bugnet_server.alerts import delivery, firing
from bugnet_server.alerts.models import Alert

logger = logging.getLogger("bugnet_server.alerts")
POLL_SECONDS = 0.25
SPIKE_SECONDS = 2.0  # between spike checks
SENDERS = 4  # deliveries sent at once
HISTORY_DAYS = 90  # alerts, their deliveries and attempts are kept this long
PRUNE_SECONDS = 3600.0


def prune(days: int = HISTORY_DAYS, batch: int = 1000) -> int:
    """Remove alerts older than ``days`` (with their deliveries and attempts), a batch at a
    time so the database lock is held briefly; returns how many."""
    before = timezone.now() - dt.timedelta(days=days)
    removed = 0
    while True:
        ids = list(Alert.objects.filter(created__lt=before).values_list("id", flat=True)[:batch])
        if not ids:
            return removed
        Alert.objects.filter(id__in=ids).delete()
        removed += len(ids)


class AlertWorker(threading.Thread):
    def __init__(self, poll_interval: float = POLL_SECONDS) -> None:
        super().__init__(name="bugnet-alerts", daemon=True)
        self.poll_interval = poll_interval
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        spikes = firing.SpikeWatch()
        next_spike_check = 0.0
        next_prune = time.monotonic() + 60.0
        pool = ThreadPoolExecutor(SENDERS, thread_name_prefix="bugnet-alert-send")
        try:
            while not self._stopping.is_set():
                busy = False
                try:
                    busy = firing.process_signals() > 0
                    if time.monotonic() >= next_spike_check:
                        next_spike_check = time.monotonic() + SPIKE_SECONDS
                        busy = spikes.check() > 0 or busy
                    busy = delivery.deliver_due(pool) > 0 or busy
                    if time.monotonic() >= next_prune:
                        next_prune = time.monotonic() + PRUNE_SECONDS
                        prune()
                except Exception:
                    logger.exception("alerts failed; retrying in a moment")
                    close_old_connections()
                    self._stopping.wait(1.0)
                if not busy:
                    self._stopping.wait(self.poll_interval)
        finally:
            pool.shutdown(wait=True)
            connection.close()
