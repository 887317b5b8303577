"""Digesting a batch of queued events in one transaction: issues, events, counters, states.

The CPU work (decompress, normalize, group, describe, compress, count tags and hours per
issue) happens before the transaction; the transaction only writes, so a SQLite writer holds
the lock briefly (ingest waits behind it) and many events share one commit. A duplicate event
id (already digested, or twice in the batch) is dropped here.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q

from bugnet_server.alerts.models import AlertSignal
from bugnet_server.digest.grouping import grouping_key
from bugnet_server.digest.normalize import normalize_event
from bugnet_server.digest.titles import describe
from bugnet_server.ingest.models import QueuedEvent
from bugnet_server.ingest.store import compress, decompress, insert_sql
from bugnet_server.issues import state
from bugnet_server.issues.models import Event, HourlyCount, Issue, Release, TagValue
from bugnet_server.projects.models import Project

UTC = dt.timezone.utc


@dataclass
class Prepared:
    row: QueuedEvent
    event: dict[str, Any]
    key: Any  # GroupingResult
    description: Any  # IssueDescription
    timestamp: dt.datetime
    release: str
    tags: list[tuple[str, str]]  # tags_of(event)
    columns: tuple[Any, ...]  # its row of the events table, but for project and issue


@dataclass
class _Group:
    """A batch's events for one issue key, and the counts they add to the issue."""

    items: list[Prepared]
    tags: dict[tuple[str, str], list[Any]]  # (key, value) → [count, first seen, last seen]
    hours: dict[dt.datetime, int]

    @classmethod
    def of(cls, items: list[Prepared]) -> _Group:
        tags: dict[tuple[str, str], list[Any]] = {}
        hours: dict[dt.datetime, int] = defaultdict(int)
        for item in items:
            when = item.timestamp
            for pair in item.tags:
                entry = tags.get(pair)
                if entry is None:
                    tags[pair] = [1, when, when]
                else:
                    entry[0] += 1
                    if when < entry[1]:
                        entry[1] = when
                    elif when > entry[2]:
                        entry[2] = when
            hours[when.replace(minute=0, second=0, microsecond=0)] += 1
        return cls(items, tags, hours)


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
    release = str(event.get("release") or "")[:200]
    adapt = connection.ops.adapt_datetimefield_value
    columns = (
        row.event_id,
        adapt(timestamp),
        adapt(received),
        str(event.get("level") or "error")[:16],
        release,
        str(event.get("environment") or "")[:64],
        compress(normalized.json or orjson.dumps(event)),
    )
    return Prepared(row, event, grouping_key(event), describe(event), timestamp, release,
                    tags_of(event), columns)  # fmt: skip


def digest_batch(rows: list[QueuedEvent]) -> list[Notification]:
    """Digest ``rows`` (claimed from the queue) and remove them from it."""
    prepared = _unique([prepare(row) for row in rows])
    groups = _groups(prepared)
    with transaction.atomic():
        stored = _stored(prepared)
        if stored:  # digested before (a resent event, a lease that ran out): count them once
            prepared = [item for item in prepared if _id(item) not in stored]
            groups = _groups(prepared)
        _note_releases(prepared)
        notifications = _write(groups)
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


def _write(groups: dict[tuple[int, str, str], _Group]) -> list[Notification]:
    issues = _existing_issues(groups)
    notifications: list[Notification] = []
    events: list[tuple[Any, ...]] = []
    touched: list[tuple[Issue, _Group]] = []
    # New issues lock their project's row (the next short id): in project order, for the same
    # reason as above.
    for issue_key, group in sorted(groups.items(), key=lambda pair: pair[0]):
        items = group.items
        issue = issues.get(issue_key)
        if issue is None:
            issue, created = _new_issue(issue_key, items[0])
            if created:
                notifications.append(Notification("new", issue.id, items[0].row.event_id))
        change, event_id = _count_into(issue, items)
        if change is not None:  # "regression" or "unignored"
            notifications.append(Notification(change, issue.id, event_id))
        touched.append((issue, group))
        events.extend((issue.project_id, issue.id, *item.columns) for item in items)
    _insert_events(events)
    _count_tags_and_hours(touched)
    return notifications


def _id(item: Prepared) -> tuple[int, str]:
    return item.row.project_id, item.row.event_id


def _unique(prepared: list[Prepared]) -> list[Prepared]:
    """The first of each event id of a project in the batch."""
    seen: set[tuple[int, str]] = set()
    unique = []
    for item in prepared:
        key = _id(item)
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


def _groups(prepared: list[Prepared]) -> dict[tuple[int, str, str], _Group]:
    by_issue_key: dict[tuple[int, str, str], list[Prepared]] = defaultdict(list)
    for item in prepared:
        by_issue_key[(item.row.project_id, item.key.version, item.key.hash)].append(item)
    return {key: _Group.of(items) for key, items in by_issue_key.items()}


def _stored(prepared: list[Prepared]) -> set[tuple[int, str]]:
    """The batch's event ids already stored as events."""
    by_project: dict[int, list[str]] = defaultdict(list)
    for item in prepared:
        by_project[item.row.project_id].append(item.row.event_id)
    stored: set[tuple[int, str]] = set()
    for project_id, ids in by_project.items():
        found = Event.objects.filter(project_id=project_id, event_id__in=ids)
        stored.update(
            (project_id, event_id) for event_id in found.values_list("event_id", flat=True)
        )
    return stored


def _existing_issues(keys: Iterable[tuple[int, str, str]]) -> dict[tuple[int, str, str], Issue]:
    wanted: dict[tuple[int, str], list[str]] = defaultdict(list)
    for project_id, version, key_hash in keys:
        wanted[(project_id, version)].append(key_hash)
    if not wanted:
        return {}
    match = Q()
    for (project_id, version), hashes in wanted.items():
        match |= Q(project_id=project_id, grouping_version=version, grouping_hash__in=hashes)
    # Locked until the batch commits: another worker adding to the same issue waits, then reads
    # the counts this one wrote (else one of the two increments would be lost). One statement,
    # in id order, so that two workers lock what they share in the same order (no deadlock).
    rows = Issue.objects.select_for_update().filter(match).order_by("id")
    return {(issue.project_id, issue.grouping_version, issue.grouping_hash): issue
            for issue in rows}  # fmt: skip


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
        first_release=first.release,
        last_release=first.release,
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
    last_seen, first_seen = issue.last_seen, issue.first_seen
    latest = max(items, key=_timestamp)
    if latest.timestamp >= last_seen:
        issue.last_seen = latest.timestamp
        issue.level = latest.description.level
        issue.title = latest.description.title[:256]
        issue.culprit = latest.description.culprit[:256]
        issue.metadata = latest.description.metadata
    earliest = min(items, key=_timestamp)
    if earliest.timestamp < first_seen:
        issue.first_seen = earliest.timestamp
    # First and last release by the events' times, not by the order they were queued in.
    released = [item for item in items if item.release]
    if released:
        newest = max(released, key=_timestamp)
        if newest.timestamp >= last_seen or not issue.last_release:
            issue.last_release = newest.release
        oldest = min(released, key=_timestamp)
        if oldest.timestamp < first_seen or not issue.first_release:
            issue.first_release = oldest.release
    now = dt.datetime.now(UTC)
    events = [(item.release, item.row.received_at) for item in items]
    change = state.on_new_events(issue, events, now, latest.row.event_id)
    issue.save(update_fields=["times_seen", "last_seen", "first_seen", "level", "title", "culprit",
                              "metadata", "first_release", "last_release"])  # fmt: skip
    return change, latest.row.event_id


def _timestamp(item: Prepared) -> dt.datetime:
    return item.timestamp


def _note_releases(prepared: list[Prepared]) -> None:
    """Record the batch's releases not seen before, each first seen when the server received
    its earliest event here (what "resolved in the next release" compares)."""
    first: dict[tuple[int, str], float] = {}
    for item in prepared:
        if item.release:
            key = (item.row.project_id, item.release)
            received = item.row.received_at
            if key not in first or received < first[key]:
                first[key] = received
    if first:
        Release.objects.bulk_create(
            [Release(project_id=project_id, version=version,
                     first_seen=dt.datetime.fromtimestamp(received, UTC))
             for (project_id, version), received in first.items()],
            ignore_conflicts=True,
        )  # fmt: skip


def _insert_events(rows: list[tuple[Any, ...]]) -> None:
    """Plain SQL: for a batch of events, ``bulk_create`` spent more building the statement."""
    if not rows:
        return
    sql = insert_sql(Event, "project_id, issue_id, event_id, timestamp, received, level, "
                            "release, environment, data")  # fmt: skip
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


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


def _count_tags_and_hours(touched: list[tuple[Issue, _Group]]) -> None:
    _upsert_tags([(issue.id, key, value, count, first, last)
                  for issue, group in touched
                  for (key, value), (count, first, last) in group.tags.items()])  # fmt: skip
    _upsert_hours([(issue.id, hour, count) for issue, group in touched
                   for hour, count in group.hours.items()])  # fmt: skip
    with_users = [issue for issue, group in touched
                  if any(key == "user" for key, _value in group.tags)]  # fmt: skip
    if not with_users:
        return
    counts = dict(
        TagValue.objects.filter(issue__in=with_users, key="user")
        .values("issue_id").annotate(n=Count("id")).values_list("issue_id", "n")
    )  # fmt: skip
    for issue in with_users:
        users = counts.get(issue.id, 0)
        if users != issue.user_count:
            Issue.objects.filter(pk=issue.pk).update(user_count=users)
            issue.user_count = users


def _upsert_tags(tags: list[tuple[Any, ...]]) -> None:
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
    with connection.cursor() as cursor:
        cursor.executemany(sql, _adapted(tags))


def _upsert_hours(hours: list[tuple[Any, ...]]) -> None:
    if not hours:
        return
    table = connection.ops.quote_name(HourlyCount._meta.db_table)
    sql = (
        f"INSERT INTO {table} (issue_id, hour, count) VALUES (%s, %s, %s) "
        f"ON CONFLICT (issue_id, hour) DO UPDATE SET count = {table}.count + excluded.count"
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, _adapted(hours))


def _adapted(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Datetimes as the backend stores them (the raw SQL above bypasses the ORM); a batch's
    rows share few distinct times (those of its events), each converted once."""
    adapt = connection.ops.adapt_datetimefield_value
    seen: dict[dt.datetime, Any] = {}

    def value(v: Any) -> Any:
        if type(v) is not dt.datetime:
            return v
        stored = seen.get(v)
        if stored is None:
            stored = seen[v] = adapt(v)
        return stored

    return [tuple(map(value, row)) for row in rows]
