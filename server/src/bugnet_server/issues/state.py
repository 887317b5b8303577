"""Every change of an issue's state happens here, and each writes an ``IssueActivity`` row with
who made it (None: Bugnet itself) and when."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from bugnet_server.issues.models import Issue, IssueActivity, Release


def _record(issue: Issue, kind: str, user: Any = None, **data: Any) -> None:
    IssueActivity.objects.create(issue=issue, kind=kind, user=user, data=data)


def resolve(issue: Issue, user: Any = None, *, in_next_release: bool = False) -> None:
    """Resolve now; with ``in_next_release``, only an event of a release first seen after the
    issue's latest one reopens it (ValueError when its events name no release: there is no
    next one to wait for)."""
    if in_next_release and not issue.last_release:
        raise ValueError("This issue's events name no release, so there is no next release to "
                         "wait for: resolve it instead.")  # fmt: skip
    with transaction.atomic():
        issue.status = Issue.Status.RESOLVED
        issue.resolved_in_next_release = in_next_release
        issue.resolved_in_release = issue.last_release if in_next_release else ""
        issue.resolved_at = timezone.now()
        issue.ignore_until = None
        issue.ignore_until_count = None
        issue.save(update_fields=["status", "resolved_in_next_release", "resolved_in_release",
                                  "resolved_at", "ignore_until", "ignore_until_count"])  # fmt: skip
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
    issue.resolved_at = None
    issue.ignore_until = None
    issue.ignore_until_count = None
    issue.save(update_fields=["status", "resolved_in_next_release", "resolved_in_release",
                              "resolved_at", "ignore_until", "ignore_until_count"])  # fmt: skip


def record_new(issue: Issue, event_id: str = "") -> None:
    _record(issue, "new", None, event_id=event_id)


def on_new_events(
    issue: Issue, events: list[tuple[str, float]], now: dt.datetime, event_id: str = ""
) -> str | None:
    """Called by the digest after it counted new events for ``issue`` (not yet saved), each as
    (release, received at, epoch seconds): reopens it when they make a regression or end an
    ignore. Returns "regression", "unignored" or None. ``event_id`` (the event that did it) is
    recorded with the change.

    A resolved issue regresses on an event received after it was resolved (what a queue held
    from before is not news); resolved in the next release, on an event of a release first seen
    after the one it was resolved in (one still deployed from before does not count).
    """
    if issue.status == Issue.Status.RESOLVED:
        since = issue.resolved_at.timestamp() if issue.resolved_at is not None else None
        releases = [release for release, received in events if since is None or received >= since]
        if not releases:
            return None
        if issue.resolved_in_next_release and issue.resolved_in_release:
            releases = _newer_releases(issue, {release for release in releases if release})
            if not releases:
                return None  # still the release it was resolved in, or an older one
        _reopen(issue)
        _record(issue, "regression", None, releases=sorted({r for r in releases if r})[:10],
                event_id=event_id)  # fmt: skip
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


def _newer_releases(issue: Issue, releases: set[str]) -> list[str]:
    """Those of ``releases`` first seen after the release ``issue`` was resolved in (all but
    that one when it is unknown: resolved before releases were recorded)."""
    releases.discard(issue.resolved_in_release)
    if not releases:
        return []
    first_seen = dict(
        Release.objects.filter(
            project_id=issue.project_id, version__in=[issue.resolved_in_release, *releases]
        ).values_list("version", "first_seen")
    )
    resolved = first_seen.get(issue.resolved_in_release)
    if resolved is None:
        return sorted(releases)
    return sorted(r for r in releases if r not in first_seen or first_seen[r] > resolved)
