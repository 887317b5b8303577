"""One issue's page: its header and state buttons, events over time, tag breakdowns, the
activity history, and one of its events in full (the latest unless one is named).

Every query here is indexed and bounded, whatever the issue's size: events are reached by
``(issue, timestamp)`` (``issue_events``) or ``(project, event_id)`` (``event_once``), and only
the event shown is decompressed.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import orjson
from django.contrib import messages
from django.db import connection
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from bugnet_server.alerts.models import Alert, Delivery
from bugnet_server.api.views import event_json as decode_event
from bugnet_server.issues import state
from bugnet_server.issues.models import Event, HourlyCount, Issue, IssueActivity, TagValue
from bugnet_server.web.access import issue_for
from bugnet_server.web.views.alerts import with_attempts

log = logging.getLogger(__name__)

TOP_TAG_VALUES = 5
ACTIVITY_SHOWN = 100
ALERT_DELIVERIES_SHOWN = 100
IGNORE_FOR = {"1h": dt.timedelta(hours=1), "24h": dt.timedelta(hours=24),
              "7d": dt.timedelta(days=7)}  # fmt: skip
IGNORE_COUNTS = ("10", "100", "1000")


@require_GET
def detail(request: HttpRequest, issue_id: int, event_id: str | None = None) -> HttpResponse:
    """The issue with its latest event, or with ``event_id`` (404 if not one of its events)."""
    issue = issue_for(request.user, issue_id)
    event = _event(issue, event_id)
    order = "oldest" if request.GET.get("order") == "oldest" else "newest"
    context = {
        "nav": "issues",
        "issue": issue,
        "project": issue.project,
        "search": reverse(
            "web:project-issues", args=[issue.project.organization.slug, issue.project.slug]
        ),
        "event": event,
        "data": _decoded(event) if event is not None else None,
        "neighbours": _neighbours(event) if event is not None else {},
        "order": order,
        "here": request.path + ("?order=oldest" if order == "oldest" else ""),
        "charts": _charts(issue, timezone.now()),
        "tags": _tag_breakdown(issue),
        "activity": _activity(issue),
        "ignore_counts": IGNORE_COUNTS,
        "ignore_remaining": max((issue.ignore_until_count or 0) - issue.times_seen, 0),
    }
    return render(request, "web/issue.html", context)


@require_GET
def event_json(request: HttpRequest, issue_id: int, event_id: str) -> HttpResponse:
    """The stored event as the API gives it, shown in the browser rather than downloaded."""
    issue = issue_for(request.user, issue_id)
    event = _event(issue, event_id)
    assert event is not None  # _event raises Http404 for a named event it cannot find
    try:
        data = decode_event(event)
    except Exception:
        log.exception("event %s of issue %s cannot be decoded", event.event_id, event.issue_id)
        return JsonResponse({"detail": "this event's stored data cannot be read"}, status=500)
    body = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    response = HttpResponse(body, content_type="application/json")
    response["Content-Disposition"] = f'inline; filename="event-{event.event_id}.json"'
    return response


@require_POST
def status(request: HttpRequest, issue_id: int) -> HttpResponse:
    """Resolve, unresolve or ignore through ``issues.state`` (which records who did it), then
    go back to the page the form was on."""
    issue = issue_for(request.user, issue_id)
    action = request.POST.get("action", "")
    try:
        done = _change_status(issue, request.user, action)
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{issue.short_name} {done}.")
    return HttpResponseRedirect(_back(request, issue))


def _change_status(issue: Issue, user: Any, action: str) -> str:
    """Apply ``action``; returns what happened, in words. Raises ValueError for a bad action."""
    kind, _, arg = action.partition(":")
    if kind == "resolve" and not arg:
        state.resolve(issue, user)
        return "is resolved"
    if kind == "resolve-next" and not arg:
        state.resolve(issue, user, in_next_release=True)  # ValueError without a release
        return f"is resolved in the next release after {issue.last_release}"
    if kind == "unresolve" and not arg:
        state.unresolve(issue, user)
        return "is unresolved"
    if kind == "ignore" and not arg:
        state.ignore(issue, user)
        return "is ignored"
    if kind == "ignore-for" and arg in IGNORE_FOR:
        state.ignore(issue, user, until=timezone.now() + IGNORE_FOR[arg])
        return f"is ignored for {arg}"
    if kind == "ignore-count" and arg in IGNORE_COUNTS:
        state.ignore(issue, user, more_events=int(arg))
        return f"is ignored until {arg} more events"
    raise ValueError("Unknown action: nothing was changed.")


def _back(request: HttpRequest, issue: Issue) -> str:
    """The page the form was posted from, if it is one of this issue's pages."""
    here = reverse("web:issue", args=[issue.pk])
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(target, allowed_hosts=None)
    return target if safe and target.startswith(here) else here


def _events(issue: Issue) -> QuerySet[Event]:
    return Event.objects.filter(issue_id=issue.pk)


def _event(issue: Issue, event_id: str | None) -> Event | None:
    if event_id is None:
        return _events(issue).order_by("-timestamp", "-id").first()
    wanted = event_id.strip().lower().replace("-", "")
    # (project, event_id) is unique and indexed; the issue check keeps other issues' events out.
    found = _events(issue).filter(project_id=issue.project_id, event_id=wanted).first()
    if found is None:
        raise Http404("no such event in this issue")
    return found


def _decoded(event: Event) -> dict[str, Any]:
    """The event's JSON; a placeholder when the stored bytes cannot be read (never a 500)."""
    try:
        data = decode_event(event)
    except Exception:
        log.exception("event %s of issue %s cannot be decoded", event.event_id, event.issue_id)
        return {"errors": [{"type": "unreadable", "name": "data"}]}
    return data


def _neighbours(event: Event) -> dict[str, str | None]:
    """Event ids of the first, older, newer and latest events, keyset on (timestamp, id). The
    redundant ``timestamp >=``/``<=`` bound keeps each query a range scan of ``issue_events``."""
    same = Event.objects.filter(issue_id=event.issue_id)
    at, pk = event.timestamp, event.pk
    newer = (same.filter(timestamp__gte=at).filter(Q(timestamp__gt=at) | Q(pk__gt=pk))
             .order_by("timestamp", "id").values_list("event_id", flat=True).first())  # fmt: skip
    older = (same.filter(timestamp__lte=at).filter(Q(timestamp__lt=at) | Q(pk__lt=pk))
             .order_by("-timestamp", "-id").values_list("event_id", flat=True).first())  # fmt: skip
    latest = first = None
    if newer is not None:
        latest = same.order_by("-timestamp", "-id").values_list("event_id", flat=True).first()
    if older is not None:
        first = same.order_by("timestamp", "id").values_list("event_id", flat=True).first()
    return {"first": first, "older": older, "newer": newer, "latest": latest}


@dataclass(frozen=True)
class Bar:
    label: str
    count: int


def _charts(issue: Issue, now: dt.datetime) -> dict[str, list[Bar]]:
    """Events per hour over the last 24 hours and per day over the last 30 days (UTC), from
    one read of the issue's hourly counts."""
    this_hour = now.astimezone(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    first_hour = this_hour - dt.timedelta(hours=23)
    first_day = (this_hour - dt.timedelta(days=29)).replace(hour=0)
    skip = int((first_hour - first_day).total_seconds()) // 3600  # hours before the 24 shown
    hourly = [0] * 24
    daily = [0] * 30
    rows = HourlyCount.objects.filter(issue_id=issue.pk, hour__gte=first_day)
    for hour, count in rows.values_list("hour", "count"):
        index = int((hour - first_day).total_seconds()) // 3600
        if index // 24 < 30:
            daily[index // 24] += count
        if 0 <= index - skip < 24:
            hourly[index - skip] += count
    return {
        "hourly": [Bar(f"{first_hour + dt.timedelta(hours=i):%b %d, %H:00} UTC", n)
                   for i, n in enumerate(hourly)],
        "daily": [Bar(f"{first_day + dt.timedelta(days=i):%b %d}", n)
                  for i, n in enumerate(daily)],
    }  # fmt: skip


@dataclass(frozen=True)
class TagShare:
    value: str
    count: int
    percent: float


@dataclass
class TagKey:
    key: str
    top: list[TagShare]


# Per key, its top values, in one statement. The keys are walked one index seek at a time (a
# "loose index scan": an issue's 100,000 distinct users are not read to find its ten keys),
# then each key's values are read in count order, LIMIT 5: a seek too with an index on
# (issue, key, -count), otherwise a top-5 sort of that key's values.
TAG_KEYS_CTE = """
WITH RECURSIVE tag_keys(key, n) AS (
    SELECT CAST(MIN(key) AS TEXT), 1 FROM {table} WHERE issue_id = %s
    UNION ALL
    SELECT CAST((SELECT MIN(t.key) FROM {table} t
                 WHERE t.issue_id = %s AND t.key > tag_keys.key) AS TEXT), n + 1
    FROM tag_keys WHERE tag_keys.key IS NOT NULL AND n < %s
)
"""
TOP_VALUES_PER_KEY = {
    # PostgreSQL would run a correlated IN for every row of the join: LATERAL runs it per key.
    "postgresql": """
SELECT k.key, v.value, v.count FROM tag_keys k CROSS JOIN LATERAL (
    SELECT u.value, u.count FROM {table} u WHERE u.issue_id = %s AND u.key = k.key
    ORDER BY u.count DESC LIMIT %s) v
ORDER BY k.key, v.count DESC, v.value
""",
    # SQLite has no LATERAL, and runs the correlated IN once per key.
    "sqlite": """
SELECT v.key, v.value, v.count FROM tag_keys JOIN {table} v ON v.id IN (
    SELECT u.id FROM {table} u WHERE u.issue_id = %s AND u.key = tag_keys.key
    ORDER BY u.count DESC LIMIT %s)
ORDER BY v.key, v.count DESC, v.value
""",
}
TAG_KEYS_SHOWN = 50


def _tag_breakdown(issue: Issue) -> list[TagKey]:
    """Per tag key, its top values with their share of the issue's events."""
    sql = TAG_KEYS_CTE + TOP_VALUES_PER_KEY[connection.vendor]
    sql = sql.format(table=connection.ops.quote_name(TagValue._meta.db_table))
    params = [issue.pk, issue.pk, TAG_KEYS_SHOWN, issue.pk, TOP_TAG_VALUES]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    keys: dict[str, TagKey] = {}
    for key, value, count in rows:
        share = min(100.0, round(100 * count / issue.times_seen, 1)) if issue.times_seen else 0.0
        keys.setdefault(key, TagKey(key, [])).top.append(TagShare(value, count, share))
    return list(keys.values())


@dataclass
class AlertItem:
    """An alert in the issue's activity, with its deliveries (and their attempts)."""

    alert: Alert
    deliveries: list[Delivery]
    is_alert: bool = True

    @property
    def created(self) -> dt.datetime:
        return self.alert.created


def _activity(issue: Issue) -> list[IssueActivity | AlertItem]:
    """The issue's state changes and alerts, newest first."""
    changes = list(
        IssueActivity.objects.filter(issue_id=issue.pk)
        .select_related("user")
        .order_by("-created", "-id")[:ACTIVITY_SHOWN]
    )
    merged: list[IssueActivity | AlertItem] = [*changes, *_alerts(issue)]
    merged.sort(key=lambda item: item.created, reverse=True)
    return merged[:ACTIVITY_SHOWN]


def _alerts(issue: Issue) -> list[AlertItem]:
    """The issue's latest alerts, from two queries: deliveries with their alert and rule, then
    their attempts."""
    deliveries = with_attempts(
        Delivery.objects.filter(alert__issue_id=issue.pk)
        .select_related("alert__rule")
        .order_by("-alert__created", "-alert_id", "id")
    )[:ALERT_DELIVERIES_SHOWN]
    items: dict[int, AlertItem] = {}
    for delivery in deliveries:
        item = items.setdefault(delivery.alert_id, AlertItem(delivery.alert, []))
        item.deliveries.append(delivery)
    return list(items.values())
