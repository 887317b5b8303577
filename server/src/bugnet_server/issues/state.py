"""Every change of an issue's state happens here, and each writes an ``IssueActivity`` row with
who made it (None: Bugnet itself) and when."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction

from bugnet_server.issues.models import Issue, IssueActivity


def _record(issue: Issue, kind: str, user: Any = None, **data: Any) -> None:
    IssueActivity.objects.create(issue=issue, kind=kind, user=user, data=data)


def resolve(issue: Issue, user: Any = None, *, in_next_release: bool = False) -> None:
    """Resolve now; with ``in_next_release``, events from the current release do not reopen it."""
    with transaction.atomic():
        issue.status = Issue.Status.RESOLVED
        issue.resolved_in_next_release = in_next_release
        issue.resolved_in_release = issue.last_release if in_next_release else ""
        issue.ignore_until = None
        issue.ignore_until_count = None
        issue.save(update_fields=["status", "resolved_in_next_release", "resolved_in_release",
                                  "ignore_until", "ignore_until_count"])  # fmt: skip
        _record(issue, "resolved", user, in_next_release=in_next_release,
                release=issue.resolved_in_release)  # fmt: skip


def unresolve(issue: Issue, user: Any = None) -> None:
    with transaction.atomic():
        _reopen(issue)
        _record(issue, "unresolved", user)


def ignore(
    issue: Issue,
    user: Any = None,
    *,
    until: dt.datetime | None = None,
    more_events: int | None = None,
) -> None:
    """Ignore, forever or until a time passes or ``more_events`` more events arrive."""
    with transaction.atomic():
        issue.status = Issue.Status.IGNORED
        issue.ignore_until = until
        issue.ignore_until_count = issue.times_seen + more_events if more_events else None
        issue.save(update_fields=["status", "ignore_until", "ignore_until_count"])
        _record(issue, "ignored", user, until=until.isoformat() if until else None,
                more_events=more_events)  # fmt: skip


def _reopen(issue: Issue) -> None:
    issue.status = Issue.Status.UNRESOLVED
    issue.resolved_in_next_release = False
    issue.resolved_in_release = ""
    issue.ignore_until = None
    issue.ignore_until_count = None
    issue.save(update_fields=["status", "resolved_in_next_release", "resolved_in_release",
                              "ignore_until", "ignore_until_count"])  # fmt: skip


def record_new(issue: Issue, event_id: str = "") -> None:
    _record(issue, "new", None, event_id=event_id)


def on_new_events(
    issue: Issue, releases: list[str], now: dt.datetime, event_id: str = ""
) -> str | None:
    """Called by the digest after it counted new events for ``issue`` (not yet saved): reopens
    it when they make a regression or end an ignore. Returns "regression", "unignored" or None.
    ``event_id`` (the event that did it) is recorded with the change.
    """
    if issue.status == Issue.Status.RESOLVED:
        if issue.resolved_in_next_release and all(r == issue.resolved_in_release for r in releases):
            return None  # still the release it was resolved in: the fix is not out yet
        _reopen(issue)
        _record(issue, "regression", None, releases=sorted(set(releases))[:10], event_id=event_id)
        return "regression"
    if issue.status == Issue.Status.IGNORED:
        expired = issue.ignore_until is not None and now >= issue.ignore_until
        counted = (
            issue.ignore_until_count is not None and issue.times_seen >= issue.ignore_until_count
        )
        if expired or counted:
            _reopen(issue)
            _record(issue, "unignored", None, reason="time" if expired else "count",
                    event_id=event_id)  # fmt: skip
            return "unignored"
    return None
