"""Which event changed an issue's state, and the link to an event's page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from bugnet_server.issues.models import Event

CHANGES = ("new", "regression", "unignored")  # the state changes an event makes


def changes_by_event(events: Sequence[Event]) -> dict[tuple[int, str], str]:
    """``{(issue id, event id): change}`` for the ``events`` that made a new issue, a
    regression or an unignore (the digest names that event in its ``IssueActivity`` row)."""
    # Imported here: `bugnet tail` imports this module before (or without) configuring Django.
    from bugnet_server.issues.models import IssueActivity

    if not events:
        return {}
    rows = IssueActivity.objects.filter(
        issue_id__in={e.issue_id for e in events},
        kind__in=CHANGES,
        data__event_id__in=[e.event_id for e in events],
    ).order_by("id")
    return {(r.issue_id, str(r.data["event_id"])): r.kind for r in rows}


def event_permalink(issue_id: int | str, event_id: str) -> str:
    """The absolute URL of the event's page on this server (``BUGNET_BASE_URL``)."""
    return f"{settings.BASE_URL}/issues/{issue_id}/events/{event_id}/"
