"""Deciding to alert: the digest's signals (new issue, regression, ignored issue back) and the
spikes found here become ``Alert`` rows with one ``Delivery`` per channel, at most one per
issue, rule and action per the rule's interval. Sending is ``delivery.py``'s job."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from bugnet_server.alerts import context
from bugnet_server.alerts.models import Alert, AlertChannel, AlertRule, AlertSignal, Delivery
from bugnet_server.issues.models import Event, Issue

logger = logging.getLogger("bugnet_server.alerts")
SIGNAL_BATCH = 200
SPIKE_COUNT_CAP = 100_000  # a spike's reported count stops at this (counting is a scan)


def _serialize_firing() -> None:
    """With several workers (PostgreSQL), only one decides at a time, so two cannot both find
    an issue not yet alerted and both alert it. Firing is rare: the wait is short."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [0x42756711])


def recently_fired(rule: AlertRule, issue: Issue, action: str, now: dt.datetime) -> bool:
    since = now - dt.timedelta(minutes=rule.interval_minutes)
    return Alert.objects.filter(rule=rule, issue=issue, action=action, created__gt=since).exists()


def fire(
    rule: AlertRule, issue: Issue, action: str, event: Event | None, event_id: str, **extra: Any
) -> Alert | None:
    """Record the alert and its deliveries (in the caller's transaction); None when no channel
    can take it (an email channel while email is not set up)."""
    channels = [
        channel
        for channel in rule.channels.all()
        if channel.kind != AlertChannel.Kind.EMAIL or settings.BUGNET.email
    ]
    if not channels:
        return None
    alert = Alert.objects.create(
        rule=rule, issue=issue, action=action, event_id=event_id,
        context=context.build(rule, issue, action, event, event_id, **extra),
    )  # fmt: skip
    Delivery.objects.bulk_create(
        Delivery(alert=alert, channel=channel, kind=channel.kind, target=channel.target[:300])
        for channel in channels
    )
    return alert


def _active_rules(project_ids: set[int]) -> dict[int, list[AlertRule]]:
    rules: dict[int, list[AlertRule]] = defaultdict(list)
    query = AlertRule.objects.filter(project_id__in=project_ids, active=True)
    for rule in query.prefetch_related("channels").order_by("id"):
        rules[rule.project_id].append(rule)
    return rules


def process_signals(limit: int = SIGNAL_BATCH) -> int:
    """Turn the digest's signals into alerts; returns how many alerts fired."""
    if not AlertSignal.objects.exists():
        return 0  # checked outside a transaction: on SQLite an idle poll takes no write lock
    fired = 0
    now = timezone.now()
    with transaction.atomic():
        _serialize_firing()
        query = AlertSignal.objects.order_by("id")
        if connection.vendor == "postgresql":
            query = query.select_for_update(skip_locked=True)
        signals = list(query[:limit])
        if not signals:
            return 0
        rules = _active_rules({signal.project_id for signal in signals})
        issues = Issue.objects.select_related("project__organization").in_bulk(
            {signal.issue_id for signal in signals if rules.get(signal.project_id)}
        )
        events = _events(signals)
        for signal in signals:
            issue = issues.get(signal.issue_id)
            if issue is None:
                continue
            event = events.get((signal.project_id, signal.event_id))
            level = event.level if event else issue.level
            environment = event.environment if event else ""
            for rule in rules.get(signal.project_id, ()):
                if signal.action not in rule.triggers:
                    continue
                if not (rule.level_matches(level) and rule.environment_matches(environment)):
                    continue
                if recently_fired(rule, issue, signal.action, now):
                    continue
                try:
                    with transaction.atomic():  # a savepoint: one bad alert spoils no other
                        if fire(rule, issue, signal.action, event, signal.event_id):
                            fired += 1
                except Exception:
                    logger.exception("could not alert %s of issue %s", signal.action, issue.pk)
        AlertSignal.objects.filter(id__in=[signal.id for signal in signals]).delete()
    return fired


def _events(signals: list[AlertSignal]) -> dict[tuple[int, str], Event]:
    wanted: dict[int, list[str]] = defaultdict(list)
    for signal in signals:
        wanted[signal.project_id].append(signal.event_id)
    found = {}
    for project_id, ids in wanted.items():
        for event in Event.objects.filter(project_id=project_id, event_id__in=ids):
            found[(project_id, event.event_id)] = event
    return found


class SpikeWatch:
    """Finds issues seen more than N times in the last M minutes, for every spike rule.

    Each pass looks only at unresolved issues seen within a rule's window and more than N times
    in all, and counts (at most N+1 rows, by the issue's event index) only those whose count
    changed since the last pass: an issue that got no new event cannot have started a spike.
    """

    def __init__(self) -> None:
        self._counted: dict[tuple[int, int], int] = {}  # (rule, issue) -> times_seen when counted

    def check(self) -> int:
        now = timezone.now()
        fired = 0
        looked: set[tuple[int, int]] = set()
        rules = AlertRule.objects.filter(
            active=True, spike_count__gt=0, spike_minutes__gt=0
        ).prefetch_related("channels")
        for rule in rules:
            assert rule.spike_count is not None
            assert rule.spike_minutes is not None
            since = now - dt.timedelta(minutes=rule.spike_minutes)
            candidates = Issue.objects.filter(
                project_id=rule.project_id,
                status=Issue.Status.UNRESOLVED,
                last_seen__gte=since,
                times_seen__gt=rule.spike_count,
            ).only("id", "times_seen", "level")
            for issue in candidates:
                key = (rule.id, issue.id)
                looked.add(key)
                if self._counted.get(key) == issue.times_seen:
                    continue
                self._counted[key] = issue.times_seen
                if not rule.level_matches(issue.level):
                    continue
                events = Event.objects.filter(issue_id=issue.id, timestamp__gte=since)
                if rule.environment:
                    events = events.filter(environment=rule.environment)
                if (
                    events.order_by().values("id")[: rule.spike_count + 1].count()
                    <= rule.spike_count
                ):
                    continue
                if self._fire(rule, issue.id, events, now):
                    fired += 1
        for key in set(self._counted) - looked:
            del self._counted[key]
        return fired

    def _fire(self, rule: AlertRule, issue_id: int, events: Any, now: dt.datetime) -> bool:
        with transaction.atomic():
            _serialize_firing()
            issue = Issue.objects.select_related("project__organization").get(pk=issue_id)
            if recently_fired(rule, issue, "spike", now):
                return False
            count = events.order_by().values("id")[:SPIKE_COUNT_CAP].count()
            latest = events.order_by("-timestamp", "-id").first()
            spike = {"count": count, "minutes": rule.spike_minutes, "threshold": rule.spike_count}
            alert = fire(rule, issue, "spike", latest, latest.event_id if latest else "",
                         spike=spike)  # fmt: skip
        return alert is not None
