"""The daily partitions of the events table on PostgreSQL (design §4.6); nothing on SQLite.

``issues_event`` is partitioned by range of ``received`` (server receive time), one partition
per UTC day named ``issues_event_pYYYYMMDD``, plus ``issues_event_pdefault`` for any row no day
partition takes, so an insert never fails for want of a partition (see the migration
``issues/0002_partition_events``). The digest worker keeps today's and the next few days'
partitions ready, and retention drops a day once every project's retention has passed it,
instead of deleting its rows one by one.

Partition DDL takes an exclusive lock on the events table; it waits at most ``LOCK_TIMEOUT``
for it (so ingest and the API never stall behind it for long), and what could not be done is
logged and tried again on the next retention pass.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from django.db import DatabaseError, connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import Max

from bugnet_server.issues.models import Event
from bugnet_server.projects.models import Project

logger = logging.getLogger("bugnet_server.digest")
UTC = dt.timezone.utc
PARENT = Event._meta.db_table
DEFAULT = f"{PARENT}_pdefault"
DAYS_AHEAD = 3  # partitions ready ahead of today (a worker down that long still fills days)
LOCK_TIMEOUT = "3s"
_DAILY = re.compile(rf"{PARENT}_p(\d{{8}})")


def partition_name(day: dt.date) -> str:
    return f"{PARENT}_p{day:%Y%m%d}"


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The range of ``received`` a day's partition holds: [midnight UTC, next midnight)."""
    start = dt.datetime.combine(day, dt.time(), UTC)
    return start, start + dt.timedelta(days=1)


def ensure_partitions(now: dt.datetime | None = None) -> int:
    """Create the partitions of today (UTC) and the next ``DAYS_AHEAD`` days that are missing;
    returns how many were created. Rows of such a day already in the default partition move
    into the new one. Never raises a database error: it logs it (the next pass tries again)."""
    now = now or dt.datetime.now(UTC)
    try:
        if not _partitioned():
            return 0
        with connection.cursor() as cursor:
            if not _exists(cursor, DEFAULT):
                cursor.execute(
                    f'CREATE TABLE IF NOT EXISTS "{DEFAULT}" PARTITION OF "{PARENT}" DEFAULT'
                )
    except DatabaseError:
        logger.exception("could not check the events partitions")
        return 0
    today = now.astimezone(UTC).date()
    created = 0
    for offset in range(DAYS_AHEAD + 1):
        day = today + dt.timedelta(days=offset)
        try:
            created += _create_day(day)
        except DatabaseError:
            logger.exception("could not create the events partition of %s", day)
    return created


def drop_expired_partitions(now: dt.datetime | None = None) -> int:
    """Drop every day partition whose whole day is older than the longest retention of any
    project; returns how many events went with them.

    A project keeps the events received after ``now - retention_days`` (see ``retention``), so
    a day that ends at or before ``now - max(retention_days)`` holds only events every project
    has let go. The event count limit only ever removes more, never keeps older events.
    """
    now = now or dt.datetime.now(UTC)
    if not _partitioned():
        return 0
    longest = Project.objects.aggregate(longest=Max("retention_days"))["longest"]
    if longest is None:
        return 0  # no project, so no event either (every event belongs to one)
    try:
        cutoff = now - dt.timedelta(days=longest)
    except OverflowError:
        return 0  # a retention longer than the calendar: nothing is ever old enough
    dropped = 0
    for day, name in _day_partitions():
        if day_bounds(day)[1] > cutoff:
            continue
        try:
            dropped += _drop(name)
        except DatabaseError:
            logger.exception("could not drop the events partition %s", name)
    return dropped


def _partitioned() -> bool:
    """Whether the events table is partitioned (PostgreSQL, migrated)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [PARENT])
        row = cursor.fetchone()
    return row is not None and row[0] == "p"


def _exists(cursor: CursorWrapper, name: str) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
    row = cursor.fetchone()
    return bool(row and row[0])


def _lock_parent(cursor: CursorWrapper) -> None:
    """Take the events table's exclusive lock first, as partition DDL needs it anyway: taking it
    before a partition's lock keeps the order inserts use (table, then partition)."""
    cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    cursor.execute(f'LOCK TABLE "{PARENT}" IN ACCESS EXCLUSIVE MODE')


def _day_partitions() -> list[tuple[dt.date, str]]:
    """The day partitions attached to the events table, oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s)",
            [PARENT],
        )
        names = [row[0] for row in cursor.fetchall()]
    days = []
    for name in names:
        match = _DAILY.fullmatch(name)
        if match:
            days.append((dt.datetime.strptime(match[1], "%Y%m%d").date(), name))
    return sorted(days)


def _create_day(day: dt.date) -> int:
    """Create ``day``'s partition unless it exists; returns 1 if it was created.

    PostgreSQL refuses a new partition while the default partition holds rows of its range
    (rows received when that day had no partition yet, e.g. while no digest worker ran). Such
    rows move: the partition is made as a plain table, they are moved into it, and it is
    attached; all in one transaction, under the table's lock, so none is lost or doubled.
    """
    name = partition_name(day)
    start, end = day_bounds(day)
    bounds = f"FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    with connection.cursor() as cursor:
        if _exists(cursor, name):
            return 0
    with transaction.atomic(), connection.cursor() as cursor:
        _lock_parent(cursor)
        if _exists(cursor, name):
            return 0  # another worker made it meanwhile
        cursor.execute(
            f'SELECT count(*) FROM "{DEFAULT}" WHERE received >= %s AND received < %s',
            [start, end],
        )
        row = cursor.fetchone()
        strays = int(row[0]) if row else 0
        if not strays:
            cursor.execute(
                f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF "{PARENT}" FOR VALUES {bounds}'
            )
            return 1
        columns = ", ".join(
            connection.ops.quote_name(field.column)
            for field in Event._meta.concrete_fields
            if field.column
        )
        cursor.execute(f'CREATE TABLE "{name}" (LIKE "{PARENT}" INCLUDING DEFAULTS)')
        cursor.execute(
            f'WITH moved AS (DELETE FROM "{DEFAULT}" WHERE received >= %s AND received < %s '
            f'RETURNING {columns}) INSERT INTO "{name}" ({columns}) SELECT {columns} FROM moved',
            [start, end],
        )
        cursor.execute(f'ALTER TABLE "{PARENT}" ATTACH PARTITION "{name}" FOR VALUES {bounds}')
    logger.info("moved %d events of %s from the default partition into %s", strays, day, name)
    return 1


def _drop(name: str) -> int:
    """Drop one partition; returns how many events it held (0 if it was gone already)."""
    with connection.cursor() as cursor:
        if not _exists(cursor, name):
            return 0
        # Counted before taking the lock, not to hold the lock during a scan; the count is only
        # reported (a concurrent retention pass may delete some of these rows meanwhile).
        cursor.execute(f'SELECT count(*) FROM "{name}"')
        row = cursor.fetchone()
        events = int(row[0]) if row else 0
    with transaction.atomic(), connection.cursor() as cursor:
        _lock_parent(cursor)
        if not _exists(cursor, name):
            return 0
        cursor.execute(f'DROP TABLE "{name}"')
    logger.info("dropped %s: %d events past every project's retention", name, events)
    return events
