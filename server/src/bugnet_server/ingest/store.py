"""Committing what ingest accepted: events into the durable queue, everything into counts.

The SDK gets its 200 only after this transaction commits. Duplicate event ids for a project
are stored once (SDKs retry; our own SDK's spool may resend after a crash).
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import zstandard
from django.db import connection
from django.db.models import Model

from bugnet_server.ingest import group_commit
from bugnet_server.ingest.envelopes import Outcomes
from bugnet_server.ingest.models import QueuedEvent
from bugnet_server.projects.models import Outcome

_local = threading.local()
# zstd level 1, not the library's default 3: on the benchmark's 12 KiB events it compresses
# in 25 µs instead of 44 (ingest and digest each compress every event once) and its output
# is 2% bigger (3,534 bytes instead of 3,453).
COMPRESSION_LEVEL = 1


def compress(data: bytes) -> bytes:
    compressor = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = _local.compressor = zstandard.ZstdCompressor(level=COMPRESSION_LEVEL)
    return bytes(compressor.compress(data))


def decompress(data: bytes | memoryview) -> bytes:
    decompressor = getattr(_local, "decompressor", None)
    if decompressor is None:
        decompressor = _local.decompressor = zstandard.ZstdDecompressor()
    return bytes(decompressor.decompress(bytes(data)))


Rows = tuple[list[tuple[object, ...]], list[tuple[object, ...]]]


def rows(
    project_id: int,
    events: list[tuple[str, bytes]],
    counts: Outcomes,
    *,
    received_at: float,
    sent_at: str,
    client_ip: str | None,
) -> Rows:
    """The queue rows (``INSERT_EVENT``) and count rows (``INSERT_OUTCOME``) that store ``events``
    (event_id, JSON) and add ``counts`` ((category, outcome, reason) → quantity).

    Plain SQL rather than ``bulk_create``: on the ingest path the ORM's statement building
    cost more than the insert.
    """
    ops = connection.ops
    ip = ops.adapt_ipaddressfield_value(client_ip)
    queued: list[tuple[object, ...]] = [
        (project_id, event_id, received_at, sent_at[:64], ip, compress(payload), 0.0)
        for event_id, payload in events
    ]
    day = ops.adapt_datefield_value(dt.datetime.fromtimestamp(received_at, dt.timezone.utc).date())
    outcomes: list[tuple[object, ...]] = [
        (project_id, day, category, outcome, reason, quantity)
        for (category, outcome, reason), quantity in counts.items()
        if quantity
    ]
    return queued, outcomes


def write(cursor: Any, rows: Rows) -> None:
    """Write ``rows`` with a Django cursor."""
    _write(cursor, rows, INSERT_EVENT, INSERT_OUTCOME)


def write_sqlite(cursor: Any, rows: Rows) -> None:
    """Write ``rows`` with a ``sqlite3`` cursor (``?`` parameters): the event loop's writer."""
    _write(cursor, rows, _QMARK_EVENT, _QMARK_OUTCOME)


def _write(cursor: Any, rows: Rows, insert_event: str, insert_outcome: str) -> None:
    queued, outcomes = rows
    if queued:
        cursor.executemany(insert_event, queued)
    if outcomes:
        cursor.executemany(insert_outcome, outcomes)


def commit(prepared: Rows) -> None:
    """Write ``prepared`` (from ``rows``) and commit: through the group commit on SQLite, so
    callers on threads share transactions. (``bugnet serve``'s event loop uses ``writer.py``.)"""

    def work() -> None:
        with connection.cursor() as cursor:
            write(cursor, prepared)

    group_commit.run(work)


def insert_sql(model: type[Model], columns: str, conflict: str = "") -> str:
    """``INSERT INTO <model's table> (columns) VALUES (%s, ...)<conflict>``, names quoted."""
    names = [name.strip() for name in columns.split(",")]
    quote = connection.ops.quote_name
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(map(quote, names))}) "
        f"VALUES ({', '.join(['%s'] * len(names))}){conflict}"
    )


INSERT_EVENT = insert_sql(
    QueuedEvent,
    "project_id, event_id, received_at, sent_at, client_ip, payload, claimed_until",
    " ON CONFLICT DO NOTHING",  # the same event id again: stored once
)
INSERT_OUTCOME = insert_sql(Outcome, "project_id, day, category, outcome, reason, quantity")
# The same statements for a sqlite3 cursor: the loop writer's connection is not Django's.
_QMARK_EVENT = INSERT_EVENT.replace("%s", "?")
_QMARK_OUTCOME = INSERT_OUTCOME.replace("%s", "?")
