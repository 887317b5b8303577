"""Django's SQLite backend, plus a file lock that queues writers.

SQLite lets one writer in at a time; the others get SQLITE_BUSY and its busy handler sleeps
them for up to 100 ms between tries, even when the lock frees a moment later. Under concurrent
ingest that sleep, not the work, set the latency (p99 near a second). Here every write
transaction first takes an exclusive ``flock`` on a file beside the database: a waiting writer
(thread or process: each connection has its own descriptor) wakes as soon as the writer before
it commits. Reads take no lock (WAL lets them run beside the writer).
"""

from __future__ import annotations

import fcntl
import os

from django.db.backends.sqlite3 import base


def write_lock_path(name: object) -> str | None:
    """The lock file beside the database file ``name``; None for a database with no file of
    its own (in memory, or a ``file:`` URI) to put one beside."""
    name = str(name)
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return name + ".writelock"


class DatabaseWrapper(base.DatabaseWrapper):
    _lock_fd: int | None = None
    _locked = False

    def _acquire(self) -> None:
        path = write_lock_path(self.settings_dict["NAME"])
        if path is None or self._locked:
            return
        if self._lock_fd is None:
            self._lock_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self._locked = True

    def _release(self) -> None:
        if self._locked and self._lock_fd is not None:
            self._locked = False
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _start_transaction_under_autocommit(self) -> None:
        self._acquire()
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]  # not in the stubs
        except BaseException:
            self._release()
            raise

    def _commit(self) -> None:
        try:
            super()._commit()  # type: ignore[misc]
        finally:
            self._release()

    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]
        finally:
            self._release()

    def _close(self) -> None:
        try:
            super()._close()  # type: ignore[misc]
        finally:
            self._release()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
