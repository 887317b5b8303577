"""Per-key rate limits (events per minute), counted in the database so every ingest process
(and every machine, on PostgreSQL) shares one count, in fixed minute windows."""

from __future__ import annotations

import time

from django.db import connection, transaction

from bugnet_server.projects.models import KeyUsage


def take(key_id: int, limit: int, amount: int = 1, now: float | None = None) -> int:
    """Count ``amount`` events for ``key_id``; 0 if within ``limit``, else seconds to wait."""
    now = time.time() if now is None else now
    minute = int(now // 60)
    table = connection.ops.quote_name(KeyUsage._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (key_id, minute, count) VALUES (%s, %s, %s) "
            f"ON CONFLICT (key_id, minute) DO UPDATE SET count = {table}.count + excluded.count "
            "RETURNING count",
            [key_id, minute, amount],
        )
        used = int(cursor.fetchone()[0])
        if minute % 10 == 0:  # now and then, forget old windows
            cursor.execute(f"DELETE FROM {table} WHERE minute < %s", [minute - 2])
    if used > limit:
        return max(1, int((minute + 1) * 60 - now + 0.999))
    return 0
