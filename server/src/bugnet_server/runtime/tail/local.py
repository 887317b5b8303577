"""``LocalSource``: the events this server's digest stores, read from its database.

The models are imported where they are used, so the rest of the tail needs no configured Django.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.db import DatabaseError, connection
from django.db.models import Max, Q

from bugnet_server.issues.changes import changes_by_event, event_permalink
from bugnet_server.runtime.tail.follow import TailError, Unreachable, pick_project
from bugnet_server.runtime.tail.lines import LEVELS, EventLine

if TYPE_CHECKING:
    from bugnet_server.issues.models import Event

HOLE_TTL = 60.0  # seconds an id below the highest seen is looked for again
MAX_HOLES = 1_000  # the newest are kept
MAX_RUNS = 50  # holes asked for as ranges up to this many runs, else as a list of ids
SCAN_LIMIT = 1_000  # event ids read per poll


class Watermark:
    """Which event ids to read next: those above the highest seen, and the holes below it.

    Ids come from one sequence, but digest workers (PostgreSQL) commit concurrently: an id
    below the highest seen that is missing may still come (its batch is being written) or
    never (rolled back). A hole is looked for until ``HOLE_TTL`` seconds after it was noticed.
    """

    def __init__(self, high: int) -> None:
        self.high = high
        self.holes: dict[int, float] = {}  # id -> when it was noticed (monotonic)

    def wanted(self, now: float) -> Q:
        self.holes = {i: t for i, t in self.holes.items() if now - t < HOLE_TTL}
        query = Q(pk__gt=self.high)
        runs = _runs(sorted(self.holes))
        if len(runs) > MAX_RUNS:  # ids interleaved by concurrent workers
            return query | Q(pk__in=sorted(self.holes))
        for low, high in runs:
            query |= Q(pk__range=(low, high))
        return query

    def saw(self, ids: Sequence[int], now: float) -> None:
        """Record ``ids`` (sorted) as read: holes are what they skip over."""
        for i in ids:
            self.holes.pop(i, None)
        if ids and ids[-1] > self.high:
            present = set(ids)
            first = max(self.high + 1, ids[-1] - MAX_HOLES)
            self.holes.update((i, now) for i in range(first, ids[-1]) if i not in present)
            self.high = ids[-1]
        if len(self.holes) > MAX_HOLES:
            self.holes = dict(sorted(self.holes.items())[-MAX_HOLES:])


def _runs(ids: Sequence[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for i in ids:
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


class LocalSource:
    """The events this server's digest stores, read from its database: those of the project
    ``spec`` names ("slug" or "org/slug"), or of every project."""

    def __init__(self, spec: str | None, org: str | None, levels: tuple[str, ...]) -> None:
        self.spec, self.org, self.levels = spec, org, levels
        self.project_id: int | None = None
        self.mark = Watermark(0)

    def start(self) -> str:
        from bugnet_server.issues.models import Event
        from bugnet_server.projects.models import Project

        try:
            where = "in every project"
            if self.spec is not None:
                projects = {str(p): p for p in Project.objects.select_related("organization")}
                name = pick_project(self.spec, self.org, projects)
                self.project_id, where = projects[name].id, f"in {name}"
            self.mark = Watermark(Event.objects.aggregate(high=Max("id"))["high"] or 0)
        except DatabaseError as exc:
            raise TailError(f"cannot read the database ({exc}); has `bugnet serve` run once?")
        return where

    def poll(self) -> list[EventLine]:
        try:
            return self._read(time.monotonic())
        except DatabaseError as exc:
            with contextlib.suppress(DatabaseError):
                connection.close()  # reconnect on the next poll
            raise Unreachable(f"cannot read the database: {str(exc).strip()}")

    def _read(self, now: float) -> list[EventLine]:
        from bugnet_server.issues.models import Event

        found = Event.objects.filter(self.mark.wanted(now)).order_by("id")
        ids = list(found.values_list("id", flat=True)[:SCAN_LIMIT])
        if not ids:
            return []
        events = Event.objects.filter(pk__in=ids).defer("data").order_by("id")
        if self.project_id is not None:
            events = events.filter(project_id=self.project_id)
        if self.levels != LEVELS:
            events = events.filter(level__in=self.levels)
        rows = list(events.select_related("issue__project__organization"))
        changes = changes_by_event(rows)
        self.mark.saw(ids, now)  # only once read: a failed read is read again
        return [_local_line(event, changes.get((event.issue_id, event.event_id))) for event in rows]


def _local_line(event: Event, change: str | None) -> EventLine:
    issue = event.issue
    return EventLine(event.event_id, str(issue.id), issue.short_name, str(issue.project),
                     event.level, issue.title, issue.culprit, event.timestamp, event.received,
                     event.release, event.environment, change,
                     event_permalink(issue.id, event.event_id))  # fmt: skip
