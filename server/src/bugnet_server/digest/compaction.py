"""Compacting the append-only count rows: each (project, day, category, outcome, reason)
becomes one row again. Runs in the digest worker; ingest keeps appending meanwhile, and only
the rows read here are replaced, so nothing is counted twice or lost."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count, Sum

from bugnet_server.projects.models import Outcome

GROUPS_PER_PASS = 500


def compact_outcomes(limit: int = GROUPS_PER_PASS) -> int:
    """Merge the rows of up to ``limit`` groups that have several; returns rows removed."""
    groups = (
        Outcome.objects.values("project_id", "day", "category", "outcome", "reason")
        .annotate(rows=Count("id"))
        .filter(rows__gt=1)[:limit]
    )
    removed = 0
    for group in groups:
        with transaction.atomic():
            rows = Outcome.objects.select_for_update().filter(
                project_id=group["project_id"], day=group["day"],
                category=group["category"], outcome=group["outcome"], reason=group["reason"],
            )  # fmt: skip
            ids = list(rows.values_list("id", flat=True))
            if len(ids) < 2:
                continue
            total = Outcome.objects.filter(id__in=ids).aggregate(total=Sum("quantity"))["total"]
            Outcome.objects.filter(id__in=ids[1:]).delete()
            Outcome.objects.filter(id=ids[0]).update(quantity=total)
            removed += len(ids) - 1
    return removed
