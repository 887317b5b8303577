"""Sending deliveries: claim the due ones, send them (in threads: one slow receiver does not
hold up the others), record each attempt, and schedule a retry (``retry.py``) for a failure."""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from bugnet_server.alerts import channels, context, retry
from bugnet_server.alerts.models import Alert, AlertChannel, AlertRule, Delivery, DeliveryAttempt
from bugnet_server.projects.models import Project

CLAIM_BATCH = 20
# A claimed delivery is due again after this if its worker died mid-send (an attempt takes at
# most channels.TIMEOUT per receiver).
LEASE_SECONDS = 120


def member_addresses(project: Project) -> list[str]:
    """The emails of the project's members (its teams' active users) who get alert emails."""
    users = (
        get_user_model()
        .objects.filter(is_active=True, teams__projects=project)
        .exclude(email="")
        .exclude(email_preference__alerts=False)
        .exclude(email_preference__muted_projects=project)
        .distinct()
        .order_by("email")
    )
    return list(users.values_list("email", flat=True))


def target_of(delivery: Delivery) -> channels.Target | None:
    """What the delivery's channel needs now (None: the channel was removed)."""
    channel = delivery.channel
    if channel is None:
        return None
    recipients: tuple[str, ...] = ()
    if channel.kind == AlertChannel.Kind.EMAIL:
        recipients = tuple(channel.address_list or member_addresses(channel.rule.project))
    return channels.Target(channel.kind, channel.url, channel.secret, recipients, delivery.pk)


def claim(limit: int = CLAIM_BATCH) -> list[Delivery]:
    now = timezone.now()
    due = Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt__lte=now)
    if not due.exists():
        return []  # checked outside a transaction: on SQLite an idle poll takes no write lock
    with transaction.atomic():
        query = due
        if connection.vendor == "postgresql":
            query = query.select_for_update(skip_locked=True, of=("self",))
        rows = list(
            query.select_related("alert", "channel__rule__project").order_by("next_attempt")[:limit]
        )
        if rows:
            Delivery.objects.filter(id__in=[row.id for row in rows]).update(
                next_attempt=now + dt.timedelta(seconds=LEASE_SECONDS)
            )
    return rows


def record(delivery: Delivery, outcome: channels.Outcome, duration: float,
           final: bool = False) -> None:  # fmt: skip
    """Write the attempt and the delivery's new state. ``final``: no retry (a test alert)."""
    now = timezone.now()
    delivery.attempts += 1
    if outcome.ok:
        delivery.status = Delivery.Status.SENT
        delivery.sent_at = now
        delivery.last_error = ""
    else:
        delivery.last_error = outcome.detail[:500]
        delay = None if final else retry.delay_after(delivery.attempts)
        if delay is None:
            delivery.status = Delivery.Status.FAILED
        else:
            delivery.next_attempt = now + dt.timedelta(seconds=delay)
    with transaction.atomic():
        DeliveryAttempt.objects.create(delivery=delivery, created=now, ok=outcome.ok,
                                       detail=outcome.detail[:500],
                                       duration_ms=round(duration * 1000))  # fmt: skip
        delivery.save(update_fields=["attempts", "status", "sent_at", "last_error", "next_attempt"])


def _timed_send(target: channels.Target, data: dict[str, Any]) -> tuple[channels.Outcome, float]:
    started = time.monotonic()
    outcome = channels.send(target, data)
    return outcome, time.monotonic() - started


def deliver_due(pool: ThreadPoolExecutor, limit: int = CLAIM_BATCH) -> int:
    """Send what is due; returns how many deliveries were attempted."""
    rows = claim(limit)
    pending = []
    for delivery in rows:
        target = target_of(delivery)
        if target is None:
            record(delivery, channels.Outcome(False, "the channel was removed"), 0.0, final=True)
            continue
        pending.append((delivery, pool.submit(_timed_send, target, delivery.alert.context)))
    for delivery, future in pending:
        outcome, duration = future.result()
        record(delivery, outcome, duration)
    return len(rows)


def send_test(channel: AlertChannel) -> Delivery:
    """The "send test alert" button: a made-up alert, sent now (no retry); its delivery
    records what happened."""
    rule: AlertRule = channel.rule
    alert = Alert.objects.create(rule=rule, issue=None, action="test", context=context.sample(rule))
    # Leased from the start: the worker must not send it too while this call does.
    leased = timezone.now() + dt.timedelta(seconds=LEASE_SECONDS)
    delivery = Delivery.objects.create(alert=alert, channel=channel, kind=channel.kind,
                                       target=channel.target[:300], next_attempt=leased)  # fmt: skip
    target = target_of(delivery)
    assert target is not None
    outcome, duration = _timed_send(target, alert.context)
    record(delivery, outcome, duration, final=True)
    return delivery
