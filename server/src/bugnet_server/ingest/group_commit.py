"""Group commit: requests that arrive together share one write transaction.

On SQLite every commit is an fsync and writers take turns, so one transaction per request
makes the disk and the lock the limit. Here a request hands its writes over and waits; whoever
finds no commit in progress becomes the leader, runs every waiting request's writes in one
transaction (each in its own savepoint, so one bad request cannot spoil the others), commits,
and wakes them. A request still returns only after its rows are committed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection, transaction


class _Ticket:
    __slots__ = ("_wake", "done", "error", "work")

    def __init__(self, work: Callable[[], None]) -> None:
        self.work = work
        self.done = False
        self.error: BaseException | None = None
        self._wake = threading.Lock()
        self._wake.acquire()

    def wait(self) -> None:
        self._wake.acquire()

    def wake(self) -> None:
        self._wake.release()


class GroupCommit:
    """One leader at a time commits for everyone waiting; each waiter is woken only for its own
    ticket (done, or its turn to lead), never all of them for every commit: with dozens of
    request threads, waking them all to check was most of the CPU the waiting cost."""

    def __init__(self, max_batch: int = 64) -> None:
        self._lock = threading.Lock()
        self._pending: list[_Ticket] = []
        self._leading = False
        self.max_batch = max_batch

    def run(self, work: Callable[[], None]) -> None:
        """Run ``work`` (database writes) in a shared transaction; return once it committed."""
        ticket = _Ticket(work)
        with self._lock:
            self._pending.append(ticket)
            follow, self._leading = self._leading, True
        if follow:
            ticket.wait()  # until done, or until handed the lead
        if not ticket.done:
            self._lead(ticket)
        if ticket.error is not None:
            raise ticket.error

    def _lead(self, ticket: _Ticket) -> None:
        try:
            while not ticket.done:  # our own ticket is first in line: one round, as a rule
                with self._lock:
                    batch = self._pending[: self.max_batch]
                    del self._pending[: self.max_batch]
                try:
                    self._commit(batch)
                finally:
                    for other in batch:
                        if other is not ticket:
                            other.wake()
        finally:
            with self._lock:  # hand the lead to the next in line, if any
                if self._pending:
                    self._pending[0].wake()
                else:
                    self._leading = False

    def _commit(self, batch: list[_Ticket]) -> None:
        failure: BaseException | None = None
        try:
            with transaction.atomic():
                for ticket in batch:
                    try:
                        with transaction.atomic():  # a savepoint per request
                            ticket.work()
                    except Exception as exc:
                        ticket.error = exc
        except BaseException as exc:  # the commit itself failed: nobody's rows are stored
            failure = exc
            for ticket in batch:
                ticket.error = ticket.error or exc
        finally:
            for ticket in batch:
                ticket.done = True
        if failure is not None and not isinstance(failure, Exception):
            raise failure  # KeyboardInterrupt and the like go on up


_group = GroupCommit()


def run(work: Callable[[], None]) -> None:
    """``work`` committed: through the group on SQLite, on its own elsewhere (PostgreSQL commits
    concurrent transactions side by side and groups their log flushes itself)."""
    if connection.vendor == "sqlite":
        _group.run(work)
    else:
        with transaction.atomic():
            work()
