"""What a project received over the last days, summed from its append-only ``Outcome`` rows:
shared by the API's ``/stats/`` and the usage section of the project's settings page."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Sum

from bugnet_server.projects.models import Outcome, Project

MAX_DAYS = 3660  # ten years: a bigger ?days= would take the date past year 1
# How the settings page names each outcome.
OUTCOME_LABELS = {
    "accepted": "accepted",
    "rate_limited": "rate limited",
    "invalid": "invalid",
    "client_discard": "dropped by the SDK",
}


def usage(project: Project, days: int) -> list[dict[str, Any]]:
    """``{category, outcome, reason (None for accepted), quantity}`` over the last ``days``
    (1 to ``MAX_DAYS``), by category, outcome and reason."""
    since = dt.date.today() - dt.timedelta(days=min(max(days, 1), MAX_DAYS))
    rows = (
        Outcome.objects.filter(project=project, day__gte=since)
        .values("category", "outcome", "reason")
        .annotate(total=Sum("quantity"))
        .order_by("category", "outcome", "reason")
    )
    return [
        {"category": r["category"], "outcome": r["outcome"], "reason": r["reason"] or None,
         "quantity": r["total"]}
        for r in rows
    ]  # fmt: skip
