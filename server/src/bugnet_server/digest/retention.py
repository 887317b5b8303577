"""Retention: events older than a project's ``retention_days``, or beyond its
``retention_max_events`` (oldest first), are deleted in small batches so ingest never waits.
Issues stay, with their counts; only stored events go.

On PostgreSQL the events table is partitioned by day (``partitions``): a pass first makes the
coming days' partitions, then drops the days older than every project's retention whole, and
only then deletes, row by row, what is left past each project's own limits.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from bugnet_server.digest import partitions
from bugnet_server.issues.models import Event
from bugnet_server.projects.models import Project

BATCH = 2000


def enforce(now: dt.datetime | None = None, batch: int = BATCH) -> int:
    """One pass over every project; returns how many events were deleted."""
    now = now or dt.datetime.now(dt.timezone.utc)
    partitions.ensure_partitions(now)
    deleted = partitions.drop_expired_partitions(now)
    for project in Project.objects.only("id", "retention_days", "retention_max_events"):
        try:
            cutoff = now - dt.timedelta(days=project.retention_days)
        except OverflowError:  # days reaching back past year 1: nothing is that old
            cutoff = None
        if cutoff is not None:
            old = Event.objects.filter(project_id=project.id, received__lt=cutoff)
            deleted += _delete(old, batch)
        excess = Event.objects.filter(project_id=project.id).count() - project.retention_max_events
        if excess > 0:
            oldest = Event.objects.filter(project_id=project.id).order_by("received", "id")
            deleted += _delete(oldest, min(excess, batch), limit=excess)
    return deleted


def _delete(events: object, batch: int, limit: int | None = None) -> int:
    """Delete ``events`` (a queryset) in short transactions of ``batch`` rows."""
    total = 0
    while limit is None or total < limit:
        size = batch if limit is None else min(batch, limit - total)
        rows = list(events.values_list("id", "received")[:size])  # type: ignore[attr-defined]
        if not rows:
            break
        ids = [row[0] for row in rows]
        received = [row[1] for row in rows]
        with transaction.atomic():
            # The bounds on ``received`` let PostgreSQL look in the partitions of those days
            # only, not in every day's index for each id.
            Event.objects.filter(
                id__in=ids, received__gte=min(received), received__lte=max(received)
            ).delete()
        total += len(ids)
    return total
