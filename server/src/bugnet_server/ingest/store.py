"""Committing what ingest accepted: events into the durable queue, everything into counts.

The SDK gets its 200 only after this transaction commits. Duplicate event ids for a project
are stored once (SDKs retry; our own SDK's spool may resend after a crash).
"""

from __future__ import annotations

import datetime as dt
import threading

import zstandard
from django.db import connection
from django.db.models import Model

from bugnet_server.ingest import group_commit
from bugnet_server.ingest.models import QueuedEvent
from bugnet_server.projects.models import Outcome

_local = threading.local()


def compress(data: bytes) -> bytes:
    compressor = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = _local.compressor = zstandard.ZstdCompressor(level=3)
    return bytes(compressor.compress(data))


def decompress(data: bytes | memoryview) -> bytes:
    decompressor = getattr(_local, "decompressor", None)
    if decompressor is None:
        decompressor = _local.decompressor = zstandard.ZstdDecompressor()
    return bytes(decompressor.decompress(bytes(data)))


def store(
    project_id: int,
    events: list[tuple[str, bytes]],
    counts: dict[tuple[str, str], int],
    *,
    received_at: float,
    sent_at: str,
    client_ip: str | None,
) -> None:
    """Queue ``events`` (event_id, JSON) and add ``counts`` ((category, outcome) → quantity).

    Plain SQL rather than ``bulk_create``: on the ingest path the ORM's statement building
    cost more than the insert.
    """
    ops = connection.ops
    ip = ops.adapt_ipaddressfield_value(client_ip)
    rows = [
        (project_id, event_id, received_at, sent_at[:64], ip, compress(payload), 0.0)
        for event_id, payload in events
    ]
    day = ops.adapt_datefield_value(dt.datetime.fromtimestamp(received_at, dt.timezone.utc).date())
    outcomes = [
        (project_id, day, category, outcome, quantity)
        for (category, outcome), quantity in counts.items()
        if quantity
    ]

    def write() -> None:
        with connection.cursor() as cursor:
            if rows:
                cursor.executemany(_INSERT_EVENT, rows)
            if outcomes:
                cursor.executemany(_INSERT_OUTCOME, outcomes)

    group_commit.run(write)


def insert_sql(model: type[Model], columns: str, conflict: str = "") -> str:
    """``INSERT INTO <model's table> (columns) VALUES (%s, ...)<conflict>``, names quoted."""
    names = [name.strip() for name in columns.split(",")]
    quote = connection.ops.quote_name
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(map(quote, names))}) "
        f"VALUES ({', '.join(['%s'] * len(names))}){conflict}"
    )


_INSERT_EVENT = insert_sql(
    QueuedEvent,
    "project_id, event_id, received_at, sent_at, client_ip, payload, claimed_until",
    " ON CONFLICT DO NOTHING",  # the same event id again: stored once
)
_INSERT_OUTCOME = insert_sql(Outcome, "project_id, day, category, outcome, quantity")
