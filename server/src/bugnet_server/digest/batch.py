"""Digesting a batch of queued events in one transaction: issues, events, counters, states.

The CPU work (decompress, normalize, group, describe) happens before the transaction; the
transaction only writes, so a SQLite writer holds the lock briefly and many events share one
commit. A duplicate event id (already digested, or twice in the batch) is dropped here.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import IntegrityError, connection, transaction
from django.db.models import F

from bugnet_server.alerts.models import AlertSignal
from bugnet_server.digest.grouping import grouping_key
from bugnet_server.digest.normalize import normalize_event
from bugnet_server.digest.titles import describe
from bugnet_server.ingest.models import QueuedEvent
from bugnet_server.ingest.store import compress, decompress, insert_sql
from bugnet_server.issues import state
from bugnet_server.issues.models import Event, HourlyCount, Issue, TagValue
from bugnet_server.projects.models import Project

UTC = dt.timezone.utc


@dataclass
class Prepared:
    row: QueuedEvent
    event: dict[str, Any]
    json: bytes  # the normalized event, serialized
    key: Any  # GroupingResult
    description: Any  # IssueDescription
    timestamp: dt.datetime
    received: dt.datetime


@dataclass(frozen=True)
class Notification:
    """Something alerts may announce: a new issue or a regression."""

    action: str  # "new" | "regression" | "unignored"
    issue_id: int
    event_id: str


def prepare(row: QueuedEvent) -> Prepared:
    try:
        raw: Any = orjson.loads(decompress(row.payload))
    except (orjson.JSONDecodeError, ValueError, TypeError):
        raw = {}  # ingest checked it was JSON; a corrupt row still becomes an (error) event
    normalized = normalize_event(
        raw,
        received_at=row.received_at,
        sent_at=row.sent_at or None,
        client_ip=row.client_ip,
        event_id=row.event_id,
    )
    event = normalized.event
    timestamp = dt.datetime.fromtimestamp(float(event.get("timestamp") or row.received_at), UTC)
    received = dt.datetime.fromtimestamp(row.received_at, UTC)
    data = normalized.json or orjson.dumps(event)
    return Prepared(row, event, data, grouping_key(event), describe(event), timestamp, received)


def digest_batch(rows: list[QueuedEvent]) -> list[Notification]:
    """Digest ``rows`` (claimed from the queue) and remove them from it."""
    prepared = [prepare(row) for row in rows]
    with transaction.atomic():
        notifications = _write(prepared)
        _signal_alerts(notifications, prepared)
        QueuedEvent.objects.filter(id__in=[row.id for row in rows]).delete()
    return notifications


def _signal_alerts(notifications: list[Notification], prepared: list[Prepared]) -> None:
    """Hand new issues, regressions and returning ignored issues to the alert worker, in the
    batch's transaction: what the digest committed, alerts will see."""
    if not notifications:
        return
    project_of = {item.row.event_id: item.row.project_id for item in prepared}
    AlertSignal.objects.bulk_create(
        AlertSignal(
            project_id=project_of[n.event_id],
            issue_id=n.issue_id,
            action=n.action,
            event_id=n.event_id,
        )
        for n in notifications
    )


def _write(prepared: list[Prepared]) -> list[Notification]:
    fresh = _without_duplicates(prepared)
    by_issue_key: dict[tuple[int, str, str], list[Prepared]] = defaultdict(list)
    for item in fresh:
        by_issue_key[(item.row.project_id, item.key.version, item.key.hash)].append(item)
    issues = _existing_issues(by_issue_key)
    notifications: list[Notification] = []
    events: list[tuple[Any, ...]] = []
    touched: list[tuple[Issue, list[Prepared]]] = []
    for issue_key, items in by_issue_key.items():
        issue = issues.get(issue_key)
        if issue is None:
            issue, created = _new_issue(issue_key, items[0])
            if created:
                notifications.append(Notification("new", issue.id, items[0].row.event_id))
        change, event_id = _count_into(issue, items)
        if change is not None:  # "regression" or "unignored"
            notifications.append(Notification(change, issue.id, event_id))
        touched.append((issue, items))
        events.extend(_event_row(issue, item) for item in items)
    _insert_events(events)
    _count_tags_and_hours(touched)
    return notifications


def _without_duplicates(prepared: list[Prepared]) -> list[Prepared]:
    seen: set[tuple[int, str]] = set()
    by_project: dict[int, list[str]] = defaultdict(list)
    for item in prepared:
        by_project[item.row.project_id].append(item.row.event_id)
    for project_id, ids in by_project.items():
        stored = Event.objects.filter(project_id=project_id, event_id__in=ids)
        seen.update(
            (project_id, event_id) for event_id in stored.values_list("event_id", flat=True)
        )
    fresh = []
    for item in prepared:
        key = (item.row.project_id, item.row.event_id)
        if key not in seen:
            seen.add(key)
            fresh.append(item)
    return fresh


def _existing_issues(
    keys: dict[tuple[int, str, str], list[Prepared]],
) -> dict[tuple[int, str, str], Issue]:
    wanted: dict[tuple[int, str], list[str]] = defaultdict(list)
    for project_id, version, key_hash in keys:
        wanted[(project_id, version)].append(key_hash)
    found = {}
    for (project_id, version), hashes in wanted.items():
        # Locked until the batch commits: another worker adding to the same issue waits, then
        # reads the counts this one wrote (else one of the two increments would be lost).
        rows = Issue.objects.select_for_update().filter(
            project_id=project_id, grouping_version=version, grouping_hash__in=hashes
        )
        for issue in rows.order_by("id"):
            found[(project_id, version, issue.grouping_hash)] = issue
    return found


def _new_issue(issue_key: tuple[int, str, str], first: Prepared) -> tuple[Issue, bool]:
    """The issue for a key no issue had when the batch started: made now, or (when another
    worker made it meanwhile) theirs. Returns it and whether this call created it."""
    project_id, version, key_hash = issue_key
    updated = Project.objects.filter(pk=project_id).update(next_short_id=F("next_short_id") + 1)
    assert updated == 1
    short_id = Project.objects.values_list("next_short_id", flat=True).get(pk=project_id) - 1
    description = first.description
    issue = Issue(
        project_id=project_id,
        short_id=short_id,
        grouping_hash=key_hash,
        grouping_version=version,
        title=description.title[:256],
        culprit=description.culprit[:256],
        level=description.level,
        metadata=description.metadata,
        first_seen=first.timestamp,
        last_seen=first.timestamp,
        first_release=str(first.event.get("release") or "")[:200],
        last_release=str(first.event.get("release") or "")[:200],
    )
    try:
        with transaction.atomic():  # a savepoint: losing the race must not undo the batch
            issue.save()
    except IntegrityError:
        existing = Issue.objects.select_for_update().get(
            project_id=project_id, grouping_version=version, grouping_hash=key_hash
        )
        return existing, False
    state.record_new(issue, first.row.event_id)
    return issue, True


def _count_into(issue: Issue, items: list[Prepared]) -> tuple[str | None, str]:
    """Add ``items`` to the issue's counters; returns the state change they caused, if any,
    and the event that caused it (the latest)."""
    issue.times_seen += len(items)
    releases = [str(item.event.get("release") or "") for item in items]
    latest = max(items, key=lambda item: item.timestamp)
    if latest.timestamp >= issue.last_seen:
        issue.last_seen = latest.timestamp
        issue.level = latest.description.level
        issue.title = latest.description.title[:256]
        issue.culprit = latest.description.culprit[:256]
        issue.metadata = latest.description.metadata
        if releases[-1]:
            issue.last_release = releases[-1][:200]
    earliest = min(items, key=lambda item: item.timestamp)
    if earliest.timestamp < issue.first_seen:
        issue.first_seen = earliest.timestamp
    if not issue.first_release and any(releases):
        issue.first_release = next(r for r in releases if r)[:200]
    now = dt.datetime.now(UTC)
    change = state.on_new_events(issue, [r for r in releases if r], now, latest.row.event_id)
    issue.save(update_fields=["times_seen", "last_seen", "first_seen", "level", "title", "culprit",
                              "metadata", "first_release", "last_release"])  # fmt: skip
    return change, latest.row.event_id


def _event_row(issue: Issue, item: Prepared) -> tuple[Any, ...]:
    event = item.event
    return (
        issue.project_id,
        issue.id,
        item.row.event_id,
        item.timestamp,
        item.received,
        str(event.get("level") or "error")[:16],
        str(event.get("release") or "")[:200],
        str(event.get("environment") or "")[:64],
        compress(item.json),
    )


def _insert_events(rows: list[tuple[Any, ...]]) -> None:
    """Plain SQL: for a batch of events, ``bulk_create`` spent more building the statement."""
    if not rows:
        return
    sql = insert_sql(Event, "project_id, issue_id, event_id, timestamp, received, level, "
                            "release, environment, data")  # fmt: skip
    with connection.cursor() as cursor:
        cursor.executemany(sql, [_adapt(row) for row in rows])


def tags_of(event: dict[str, Any]) -> list[tuple[str, str]]:
    """The tag pairs counted per issue: the event's tags plus level, release, environment, user."""
    pairs: list[tuple[str, str]] = []
    for pair in event.get("tags") or ():
        if isinstance(pair, (list, tuple)) and len(pair) == 2:
            pairs.append((str(pair[0])[:200], str(pair[1])[:200]))
    for name in ("level", "release", "environment"):
        if event.get(name):
            pairs.append((name, str(event[name])[:200]))
    user = event.get("user")
    if isinstance(user, dict):
        for field, prefix in (("id", "id"), ("email", "email"), ("username", "username"),
                              ("ip_address", "ip")):  # fmt: skip
            if user.get(field):
                pairs.append(("user", f"{prefix}:{user[field]}"[:200]))
                break
    return list(dict.fromkeys(pairs))


def _count_tags_and_hours(touched: list[tuple[Issue, list[Prepared]]]) -> None:
    tags: dict[tuple[int, str, str], list[Any]] = {}
    hours: dict[tuple[int, dt.datetime], int] = defaultdict(int)
    for issue, items in touched:
        for item in items:
            for key, value in tags_of(item.event):
                entry = tags.setdefault((issue.id, key, value), [0, item.timestamp, item.timestamp])
                entry[0] += 1
                entry[1] = min(entry[1], item.timestamp)
                entry[2] = max(entry[2], item.timestamp)
            hours[(issue.id, item.timestamp.replace(minute=0, second=0, microsecond=0))] += 1
    _upsert_tags(tags)
    _upsert_hours(hours)
    for issue, _items in touched:
        users = TagValue.objects.filter(issue=issue, key="user").count()
        if users != issue.user_count:
            Issue.objects.filter(pk=issue.pk).update(user_count=users)
            issue.user_count = users


def _upsert_tags(tags: dict[tuple[int, str, str], list[Any]]) -> None:
    if not tags:
        return
    table = connection.ops.quote_name(TagValue._meta.db_table)
    sql = (
        f"INSERT INTO {table} (issue_id, key, value, count, first_seen, last_seen) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (issue_id, key, value) DO UPDATE SET "
        f"count = {table}.count + excluded.count, "
        f"first_seen = CASE WHEN excluded.first_seen < {table}.first_seen "
        f"THEN excluded.first_seen ELSE {table}.first_seen END, "
        f"last_seen = CASE WHEN excluded.last_seen > {table}.last_seen "
        f"THEN excluded.last_seen ELSE {table}.last_seen END"
    )
    params = [(i, k, v, c, first, last) for (i, k, v), (c, first, last) in tags.items()]
    with connection.cursor() as cursor:
        cursor.executemany(sql, [_adapt(row) for row in params])


def _upsert_hours(hours: dict[tuple[int, dt.datetime], int]) -> None:
    if not hours:
        return
    table = connection.ops.quote_name(HourlyCount._meta.db_table)
    sql = (
        f"INSERT INTO {table} (issue_id, hour, count) VALUES (%s, %s, %s) "
        f"ON CONFLICT (issue_id, hour) DO UPDATE SET count = {table}.count + excluded.count"
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, [_adapt((i, h, c)) for (i, h), c in hours.items()])


def _adapt(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Datetimes as the backend stores them (the raw SQL above bypasses the ORM)."""
    return tuple(
        connection.ops.adapt_datetimefield_value(v) if isinstance(v, dt.datetime) else v
        for v in row
    )
