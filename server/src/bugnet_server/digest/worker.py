"""The digest worker: claims batches from the queue and digests them, until told to stop.

Claiming takes a lease (``claimed_until``) in a short transaction (``FOR UPDATE SKIP LOCKED``
on PostgreSQL, so any number of workers on any number of machines share the queue); a worker
that dies leaves its rows to be claimed again when the lease runs out, and the digest drops an
event id it already stored, so nothing is lost or counted twice.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import OperationalError, close_old_connections, connection, transaction

from bugnet_server.digest import partitions, retention
from bugnet_server.digest.batch import Notification, digest_batch
from bugnet_server.digest.compaction import compact_outcomes
from bugnet_server.ingest.models import QueuedEvent

logger = logging.getLogger("bugnet_server.digest")
BATCH_SIZE = 250
LEASE_SECONDS = 120.0
RETENTION_INTERVAL = 300.0  # seconds between retention passes
COMPACTION_INTERVAL = 60.0  # seconds between merges of the append-only count rows
LINGER_SECONDS = 0.05  # after a batch that was not full, before claiming the next


def claim(batch_size: int = BATCH_SIZE, lease: float = LEASE_SECONDS) -> list[QueuedEvent]:
    now = time.time()
    with transaction.atomic():
        queue = QueuedEvent.objects.filter(claimed_until__lt=now).order_by("id")
        if connection.vendor == "postgresql":
            queue = queue.select_for_update(skip_locked=True)
        rows = list(queue[:batch_size])
        if rows:
            QueuedEvent.objects.filter(id__in=[r.id for r in rows]).update(
                claimed_until=now + lease
            )
    return rows


def _relax_sqlite_sync() -> None:
    """On SQLite, let this connection's commits skip the fsync (``synchronous=NORMAL``).

    Ingest commits with ``synchronous=FULL``, as its 200 promises the event is on disk. The
    digest need not: it moves events from the queue to issues in one transaction, so a commit
    lost in a power cut leaves them queued, to be digested again; and the next ingest commit's
    fsync makes everything before it durable too. It saves two fsyncs per batch.
    """
    if connection.vendor != "sqlite":
        return
    global _relaxed
    connection.ensure_connection()
    if connection.connection is _relaxed:
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA synchronous=NORMAL")
    _relaxed = connection.connection


_relaxed: object = None  # the connection already relaxed (a new one starts with FULL again)


def run_once(batch_size: int = BATCH_SIZE) -> list[Notification]:
    """Digest one batch; returns its notifications ([] when the queue was empty)."""
    rows = claim(batch_size)
    if not rows:
        return []
    return digest_batch(rows)


def _digest(rows: list[QueuedEvent], attempts: int = 3) -> None:
    """``digest_batch(rows)``, again at once if the database gave up on it (PostgreSQL breaking
    a deadlock between workers, SQLite locked past its timeout): the rows are still this
    worker's, and waiting for the lease to run out would hold them back for minutes."""
    for attempt in range(1, attempts + 1):
        try:
            digest_batch(rows)
            return
        except OperationalError as exc:
            if attempt == attempts:
                raise
            logger.warning("digest: batch failed (%s); trying again", exc)
            close_old_connections()
            time.sleep(0.1 * attempt)


class DigestWorker(threading.Thread):
    """Digests until ``stop()``; then finishes the batch in hand and returns."""

    def __init__(
        self, poll_interval: float = 0.2, batch_size: int = BATCH_SIZE, lease: float = LEASE_SECONDS
    ) -> None:
        super().__init__(name="bugnet-digest", daemon=True)
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.lease = lease
        self._stopping = threading.Event()
        self.digested = 0

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        partitions.ensure_partitions()
        next_retention = time.monotonic() + 5.0
        next_compaction = time.monotonic() + COMPACTION_INTERVAL
        try:
            while not self._stopping.is_set():
                try:
                    if time.monotonic() >= next_retention:
                        next_retention = time.monotonic() + RETENTION_INTERVAL
                        removed = retention.enforce()
                        if removed:
                            logger.info("retention removed %d events", removed)
                    if time.monotonic() >= next_compaction:
                        next_compaction = time.monotonic() + COMPACTION_INTERVAL
                        compact_outcomes()
                    _relax_sqlite_sync()
                    rows = claim(self.batch_size, self.lease)
                    if rows:
                        _digest(rows)
                        self.digested += len(rows)
                        if len(rows) < self.batch_size:
                            # The queue is running dry: let the next batch fill up a little
                            # (a batch's cost is mostly per transaction, not per event).
                            self._stopping.wait(LINGER_SECONDS)
                        continue
                except Exception:
                    logger.exception("digest failed; retrying in a moment")
                    close_old_connections()
                self._stopping.wait(self.poll_interval)
        finally:
            connection.close()
