"""The writers of an event-loop worker: they commit for every ingest request waiting.

Requests on the event loop hand their rows over and wait without a thread each; a writer
takes everything that is waiting, writes it in one transaction, commits and wakes them all.
A request still gets its 200 only once its rows are committed. ``Writer`` is one thread (it
may wait: for PostgreSQL's round trips, for SQLite's write lock); ``LoopWriter``, on SQLite,
commits on the loop itself when it need not wait, and hands the rest to a ``Writer``.
Measured with ``benchmarks/ingest.py``: the 16 request threads of a threaded worker, each
waiting on a shared commit, spent more CPU handing the GIL and the lead around than storing.

If a batch fails, its requests are written again one savepoint each, so one bad request cannot
spoil the others; if the commit itself fails (the database is down), every request of the batch
gets the error (and the SDK a 503: nothing was stored).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connection, transaction

from bugnet_server.ingest import store

logger = logging.getLogger("bugnet_server.ingest")

_Job = tuple[Any, asyncio.Future[None], asyncio.AbstractEventLoop]


class _Checkpoint:
    """Asks the writer thread for a checkpoint."""


_CHECKPOINT = _Checkpoint()


class Writer:
    """``write(cursor, rows)`` (by default ``store.write``) for every request's rows, in batches
    of at most ``max_batch`` requests."""

    def __init__(self, write: Callable[[Any, Any], None] = store.write,
                 max_batch: int = 256) -> None:  # fmt: skip
        self._write = write
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | _Checkpoint | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.checkpoints = 0

    async def write(self, rows: Any) -> None:
        """Return once ``rows`` are committed; raise what the database raised otherwise."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self.hand_over(rows, future, loop)
        await future

    def hand_over(self, rows: Any, future: asyncio.Future[None],
                  loop: asyncio.AbstractEventLoop) -> None:  # fmt: skip
        """Commit ``rows``, then settle ``future`` (in ``loop``)."""
        self._put((rows, future, loop))

    def checkpoint(self) -> None:
        """Copy SQLite's write-ahead log into the database, in this thread (``LoopWriter``)."""
        self._put(_CHECKPOINT)

    def stop(self) -> None:
        """Commit what was handed over, then end the thread."""
        thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _put(self, item: _Job | _Checkpoint) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="ingest-writer",
                                                    daemon=True)  # fmt: skip
                    self._thread.start()
        self._queue.put(item)

    def _run(self) -> None:
        try:
            stopping = False
            while not stopping:
                batch, checkpoint, stopping = self._take()
                if batch:
                    self._wake(batch, self._commit([rows for rows, _future, _loop in batch]))
                if checkpoint:
                    self._checkpoint()
        finally:
            connection.close()

    def _take(self) -> tuple[list[_Job], bool, bool]:
        """Wait for work, then take all that waits (up to ``max_batch`` requests): the requests,
        whether a checkpoint was asked for, and whether to stop after them."""
        batch: list[_Job] = []
        checkpoint = stopping = False
        item = self._queue.get()
        while True:
            if item is None:
                stopping = True
                break
            if isinstance(item, _Checkpoint):
                checkpoint = True
            else:
                batch.append(item)
                if len(batch) >= self.max_batch:
                    break
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
        return batch, checkpoint, stopping

    def _wake(self, batch: list[_Job], errors: list[BaseException | None]) -> None:
        loops: dict[asyncio.AbstractEventLoop, list[tuple[Any, BaseException | None]]] = {}
        for (_rows, future, loop), error in zip(batch, errors, strict=True):
            loops.setdefault(loop, []).append((future, error))
        for loop, settled in loops.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:
                pass  # that loop is closed: nobody is waiting any more

    def _commit(self, batch: list[Any]) -> list[BaseException | None]:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                for rows in batch:
                    self._write(cursor, rows)
            return [None] * len(batch)
        except Exception as exc:
            connection.close_if_unusable_or_obsolete()
            if len(batch) == 1:
                return [exc]
            logger.warning("ingest: a batch of %d failed (%s); storing each alone", len(batch), exc)
        return self._commit_each(batch)

    def _commit_each(self, batch: list[Any]) -> list[BaseException | None]:
        errors: list[BaseException | None] = []
        try:
            with transaction.atomic():
                for rows in batch:
                    try:
                        with transaction.atomic(), connection.cursor() as cursor:  # a savepoint
                            self._write(cursor, rows)
                        errors.append(None)
                    except Exception as exc:
                        errors.append(exc)
        except Exception as exc:  # the commit failed: nothing of the batch is stored
            connection.close_if_unusable_or_obsolete()
            return [exc] * len(batch)
        return errors

    def _checkpoint(self) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self.checkpoints += 1
        except Exception as exc:  # the next one will do it
            logger.warning("ingest: checkpoint failed (%s)", exc)
            connection.close_if_unusable_or_obsolete()


# The loop's connection: durable commits (a 200 means on disk), and no checkpoints of its own.
_LOOP_PRAGMAS = ("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
                 "PRAGMA wal_autocheckpoint=0;")  # fmt: skip


class LoopWriter:
    """On SQLite, the event loop commits the rows itself, for every request waiting, between
    two turns of the loop; a ``Writer`` thread takes over whenever that would mean waiting.

    A request hands its rows over and waits; the first to do so in a turn of the loop schedules
    one commit for all that arrive in it. Measured under ``benchmarks/ingest.py``'s load, the
    thread writer's hand-offs (the GIL, wake-ups, Django's cursor) cost more than the insert
    and the commit (0.45 to 0.5 ms of worker CPU per event, against 0.31 to 0.33 here). The
    loop never waits on another writer: it takes ``bugnet_server.sqlite``'s write lock only if
    it is free, on its own connection with no busy timeout; when the digest or another worker
    is writing, when a request's rows fail (each is then tried alone) or anything else goes
    wrong, the batch goes to the ``Writer`` thread instead. What the loop does wait for is the
    commit's fsync (``synchronous=FULL``: a 200 means the event is on disk), which on this
    machine takes a tenth of a millisecond. Its connection never checkpoints: copying the
    write-ahead log into the database (and that fsync) is the thread's, once a second.
    """

    CHECKPOINT_INTERVAL = 1.0  # seconds between the checkpoints asked of the thread

    def __init__(self, database: str, lock_path: str,
                 write: Callable[[Any, Any], None] = store.write_sqlite,
                 fallback: Writer | None = None) -> None:  # fmt: skip
        self._database = database
        self._lock_path = lock_path
        self._write = write
        self.fallback = fallback or Writer()
        self._pending: list[tuple[Any, asyncio.Future[None]]] = []
        self._db: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._next_checkpoint = 0.0
        self.commits = 0  # batches the loop committed itself

    async def write(self, rows: Any) -> None:
        """Return once ``rows`` are committed; raise what the database raised otherwise."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((rows, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush, loop)
        await future

    def stop(self) -> None:
        """Hand what waits to the thread, which commits it before it ends; close."""
        batch, self._pending = self._pending, []
        for rows, future in batch:
            self.fallback.hand_over(rows, future, future.get_loop())
        self.fallback.stop()
        self._close()

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        if not self._commit(batch):
            for rows, future in batch:
                self.fallback.hand_over(rows, future, loop)
            return
        self.commits += 1
        _settle([(future, None) for _rows, future in batch])
        now = time.monotonic()
        if now >= self._next_checkpoint:
            self._next_checkpoint = now + self.CHECKPOINT_INTERVAL
            self.fallback.checkpoint()

    def _commit(self, batch: list[tuple[Any, asyncio.Future[None]]]) -> bool:
        """Commit the batch here; False (nothing written) if the thread should do it."""
        try:
            db, lock_fd = self._connect()
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # another writer is in: wait for it in the thread, not here
        except Exception as exc:
            logger.warning("ingest: the loop's SQLite connection failed (%s)", exc)
            self._close()
            return False
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                cursor = db.cursor()
                for rows, _future in batch:
                    self._write(cursor, rows)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            return True
        except sqlite3.IntegrityError:  # a bad request: the thread tries each alone
            return False
        except Exception as exc:
            failure = exc
        finally:
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
        # Locked by a write outside Bugnet's lock: the thread waits for it. Anything else (a
        # full disk, a broken connection): the thread tries, and the loop starts afresh.
        if "locked" not in str(failure):
            logger.warning("ingest: the loop's commit failed (%s); the writer thread takes over",
                           failure)  # fmt: skip
            self._close()
        return False

    def _connect(self) -> tuple[sqlite3.Connection, int]:
        if self._db is None or self._lock_fd is None:
            self._close()
            db = sqlite3.connect(self._database, timeout=0, isolation_level=None,
                                 check_same_thread=False)  # fmt: skip
            try:
                db.executescript(_LOOP_PRAGMAS)
                self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db, self._lock_fd

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _settle(settled: list[tuple[asyncio.Future[None], BaseException | None]]) -> None:
    for future, error in settled:
        if future.done():  # the request was cancelled (its client went away)
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
