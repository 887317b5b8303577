"""Committing what ingest accepted: events into the durable queue, everything into counts.

The SDK gets its 200 only after this transaction commits. Duplicate event ids for a project
are stored once (SDKs retry; our own SDK's spool may resend after a crash).
"""

from __future__ import annotations

import datetime as dt
import threading

import zstandard

from bugnet_server.ingest import group_commit
from bugnet_server.ingest.models import QueuedEvent
from bugnet_server.projects.models import Outcome, Project

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
    project: Project,
    events: list[tuple[str, bytes]],
    counts: dict[tuple[str, str], int],
    *,
    received_at: float,
    sent_at: str,
    client_ip: str | None,
) -> None:
    """Queue ``events`` (event_id, JSON) and add ``counts`` ((category, outcome) → quantity)."""
    rows = [
        QueuedEvent(
            project=project,
            event_id=event_id,
            received_at=received_at,
            sent_at=sent_at[:64],
            client_ip=client_ip,
            payload=compress(payload),
        )
        for event_id, payload in events
    ]
    day = dt.datetime.fromtimestamp(received_at, dt.timezone.utc).date()
    outcomes = [
        Outcome(project=project, day=day, category=category, outcome=outcome, quantity=quantity)
        for (category, outcome), quantity in counts.items()
        if quantity
    ]

    def write() -> None:
        if rows:
            QueuedEvent.objects.bulk_create(rows, ignore_conflicts=True)
        if outcomes:
            Outcome.objects.bulk_create(outcomes)

    group_commit.run(write)
