"""The writer of an event-loop worker: one thread that commits for every ingest request.

Requests on the event loop hand their rows over and wait without a thread each; the writer
takes everything that is waiting, writes it in one transaction, commits and wakes them all
with one call into the loop. A request still gets its 200 only once its rows are committed.
Measured with ``benchmarks/ingest.py``: the 16 request threads of a threaded worker, each
waiting on a shared commit, spent more CPU handing the GIL and the lead around than storing.

If a batch fails, its requests are written again one savepoint each, so one bad request cannot
spoil the others; if the commit itself fails (the database is down), every request of the batch
gets the error (and the SDK a 503: nothing was stored).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from django.db import connection, transaction

from bugnet_server.ingest import store

logger = logging.getLogger("bugnet_server.ingest")

_Job = tuple[Any, asyncio.Future[None], asyncio.AbstractEventLoop]


class Writer:
    """``write(cursor, rows)`` (by default ``store.write``) for every request's rows, in batches
    of at most ``max_batch`` requests."""

    def __init__(self, write: Callable[[Any, Any], None] = store.write,
                 max_batch: int = 256) -> None:  # fmt: skip
        self._write = write
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    async def write(self, rows: Any) -> None:
        """Return once ``rows`` are committed; raise what the database raised otherwise."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if self._thread is None:
            self._start()
        self._queue.put((rows, future, loop))
        await future

    def stop(self) -> None:
        """Commit what was handed over, then end the thread."""
        thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ingest-writer",
                                                daemon=True)  # fmt: skip
                self._thread.start()

    def _run(self) -> None:
        try:
            stopping = False
            while not stopping:
                job = self._queue.get()
                if job is None:
                    break
                batch = [job]
                while len(batch) < self.max_batch:
                    try:
                        job = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if job is None:
                        stopping = True
                        break
                    batch.append(job)
                errors = self._commit([rows for rows, _future, _loop in batch])
                loops: dict[asyncio.AbstractEventLoop, list[tuple[Any, BaseException | None]]] = {}
                for (_rows, future, loop), error in zip(batch, errors, strict=True):
                    loops.setdefault(loop, []).append((future, error))
                for loop, settled in loops.items():
                    try:
                        loop.call_soon_threadsafe(_settle, settled)
                    except RuntimeError:
                        pass  # that loop is closed: nobody is waiting any more
        finally:
            connection.close()

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


def _settle(settled: list[tuple[asyncio.Future[None], BaseException | None]]) -> None:
    for future, error in settled:
        if future.done():  # the request was cancelled (its client went away)
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
