"""Template helpers of the alert pages and the issue's activity: a delivery's state in words."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.utils import timezone

register = template.Library()

KINDS = {"email": "Email", "webhook": "Webhook", "slack": "Slack", "discord": "Discord"}
ACTIONS = {"new": "new issue", "regression": "regression", "unignored": "ignored issue back",
           "spike": "spike", "test": "test"}  # fmt: skip


@register.filter
def channel_kind(kind: str) -> str:
    """``webhook`` → ``Webhook``."""
    return KINDS.get(kind, kind)


@register.filter
def alert_action(action: str) -> str:
    """What fired an alert, in words: ``unignored`` → ``ignored issue back``."""
    return ACTIONS.get(action, action)


def _at(moment: dt.datetime) -> str:
    moment = moment.astimezone(dt.timezone.utc)
    if moment - timezone.now() < dt.timedelta(hours=20):
        return f"{moment:%H:%M} UTC"
    return f"{moment:%Y-%m-%d %H:%M} UTC"


@register.filter
def delivery_state(delivery: Any) -> str:
    """``sent``, ``sent after 2 attempts``, ``failed: connection refused, retrying at 14:03
    UTC``, ``failed after 17 attempts: HTTP 500``, or ``waiting to be sent``."""
    attempts = delivery.attempts
    after = f" after {attempts} attempts" if attempts > 1 else ""
    if delivery.status == "sent":
        return f"sent{after}"
    if delivery.status == "failed":
        return f"failed{after}: {delivery.last_error or 'no detail'}"
    if attempts == 0:
        return "waiting to be sent"
    return f"failed: {delivery.last_error or 'no detail'}, retrying at {_at(delivery.next_attempt)}"


@register.filter
def duration(milliseconds: int) -> str:
    """``35 ms``, ``1.2 s``."""
    if milliseconds < 1000:
        return f"{milliseconds} ms"
    return f"{milliseconds / 1000:.1f} s"
