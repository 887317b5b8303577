"""On PostgreSQL, ``issues_event`` becomes a table partitioned by range of ``received`` (one
partition per UTC day, plus a default one), so retention drops whole days instead of deleting
rows (design §4.6). SQLite keeps its plain table; Django's migration state does not change.

PostgreSQL wants the partition key in every unique constraint, so the primary key becomes
``(id, received)`` and ``event_once`` becomes unique on ``(project_id, event_id, received)``.
An event id is still stored once per project: the digest drops an event id already stored
(``_without_duplicates`` in ``digest/batch.py``), and the queue holds a (project, event id) at
most once (``queued_once``), deleting the row in the transaction that stores the event; so a
second copy can only be queued after the first is committed, and its digest sees and drops it.
Two workers digesting the same queue row (a lease that ran out) insert the same ``received``,
which the new constraint still refuses, as before.

The ``id`` column keeps its identity sequence (renamed back to ``issues_event_id_seq`` and set
where the old one was), so inserts without an id keep getting new ones. No other table has a
foreign key to ``issues_event``. The whole conversion is one transaction; it copies every
stored event, so on a large database it takes a while and holds the table meanwhile.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import migrations

TABLE = "issues_event"
REBUILT = "issues_event_rebuilt"
DAYS_AHEAD = 3  # partitions made ahead of today; the digest worker keeps this many ready


def _day_bounds(day: dt.date) -> tuple[str, str]:
    following = day + dt.timedelta(days=1)
    return f"{day.isoformat()} 00:00:00+00", f"{following.isoformat()} 00:00:00+00"


def _create_partitions(cursor: Any, parent: str, first: dt.date, last: dt.date) -> None:
    day = first
    while day <= last:
        low, high = _day_bounds(day)
        cursor.execute(
            f'CREATE TABLE "{TABLE}_p{day:%Y%m%d}" PARTITION OF "{parent}" '
            f"FOR VALUES FROM ('{low}') TO ('{high}')"
        )
        day += dt.timedelta(days=1)
    cursor.execute(f'CREATE TABLE "{TABLE}_pdefault" PARTITION OF "{parent}" DEFAULT')


def _rebuild(cursor: Any, partitioned: bool) -> None:
    """Copy ``issues_event`` into a new table (partitioned or plain) that takes its place, with
    the same columns, identity, foreign keys and indexes, under the same names."""
    cursor.execute(
        "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass ORDER BY conname",
        [TABLE],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s::regclass "
        "AND indexrelid NOT IN (SELECT conindid FROM pg_constraint WHERE conrelid = %s::regclass)"
        " ORDER BY indexrelid",
        [TABLE, TABLE],
    )
    indexes = [row[0] for row in cursor.fetchall()]
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])
    [old_sequence] = cursor.fetchone()
    cursor.execute(f"SELECT last_value, is_called FROM {old_sequence}")
    last_value, is_called = cursor.fetchone()

    cursor.execute(
        f'CREATE TABLE "{REBUILT}" (LIKE "{TABLE}" INCLUDING DEFAULTS INCLUDING IDENTITY)'
        + (" PARTITION BY RANGE (received)" if partitioned else "")
    )
    if partitioned:
        cursor.execute(f'SELECT min(received) FROM "{TABLE}"')
        [oldest] = cursor.fetchone()
        today = dt.datetime.now(dt.timezone.utc).date()
        first = today if oldest is None else min(oldest.astimezone(dt.timezone.utc).date(), today)
        _create_partitions(cursor, REBUILT, first, today + dt.timedelta(days=DAYS_AHEAD))
    # LIKE keeps the column order, so the rows copy as they are (ids included).
    cursor.execute(f'INSERT INTO "{REBUILT}" SELECT * FROM "{TABLE}"')
    cursor.execute(f'DROP TABLE "{TABLE}"')  # its sequence, indexes and constraints with it
    cursor.execute(f'ALTER TABLE "{REBUILT}" RENAME TO "{TABLE}"')
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])
    [new_sequence] = cursor.fetchone()
    cursor.execute(f"ALTER SEQUENCE {new_sequence} RENAME TO {TABLE}_id_seq")
    cursor.execute(
        "SELECT setval(%s::regclass, %s, %s)", [f"{TABLE}_id_seq", last_value, is_called]
    )

    key = "(id, received)" if partitioned else "(id)"
    once = "(project_id, event_id, received)" if partitioned else "(project_id, event_id)"
    for name, kind, definition in constraints:
        if kind == "p":
            definition = f"PRIMARY KEY {key}"
        elif name == "event_once":
            definition = f"UNIQUE {once}"
        cursor.execute(f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "{name}" {definition}')
    for definition in indexes:
        # A partitioned table's index reads "ON ONLY table"; the new table gets it whole.
        cursor.execute(definition.replace(" ON ONLY ", " ON "))


def partition(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        _rebuild(cursor, partitioned=True)


def unpartition(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = %s::regclass", [TABLE])
        if cursor.fetchone()[0] == "p":
            _rebuild(cursor, partitioned=False)


class Migration(migrations.Migration):
    dependencies = [
        ("issues", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(partition, unpartition, elidable=False),
    ]
