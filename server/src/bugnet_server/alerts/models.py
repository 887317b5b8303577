"""Alert rules, their channels, and what they sent.

The digest writes an ``AlertSignal`` (in its own transaction: a committed new issue always has
one) for each new issue, regression and ignored issue coming back; the alert worker turns
signals, and spikes it finds itself, into ``Alert`` rows (one firing of a rule for an issue),
each with a ``Delivery`` per channel, and sends those, recording every ``DeliveryAttempt``.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

from bugnet_server.issues.models import Issue
from bugnet_server.projects.models import Project

LEVELS = ["debug", "info", "warning", "error", "fatal"]


def new_secret() -> str:
    return secrets.token_hex(32)


class AlertRule(models.Model):
    """When to alert (the triggers, each event filtered by level and environment) and how
    often: at most one alert per issue, rule and kind of trigger per ``interval_minutes``."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="alert_rules")
    name = models.CharField(max_length=100)
    active = models.BooleanField(default=True)
    on_new = models.BooleanField(default=True)
    on_regression = models.BooleanField(default=True)
    on_unignored = models.BooleanField(default=False)
    # A spike: more than spike_count events of one issue within spike_minutes.
    spike_count = models.PositiveIntegerField(null=True, blank=True)
    spike_minutes = models.PositiveIntegerField(null=True, blank=True)
    min_level = models.CharField(max_length=16, blank=True, default="")  # "": any level
    environment = models.CharField(max_length=64, blank=True, default="")  # "": any
    interval_minutes = models.PositiveIntegerField(default=30)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.project}: {self.name}"

    @property
    def on_spike(self) -> bool:
        return bool(self.spike_count and self.spike_minutes)

    @property
    def triggers(self) -> list[str]:
        """The actions this rule fires on, as alerts name them."""
        fired = [name for name, on in (("new", self.on_new), ("regression", self.on_regression),
                                       ("unignored", self.on_unignored)) if on]  # fmt: skip
        if self.on_spike:
            fired.append("spike")
        return fired

    def summary(self) -> str:
        """The rule in words: "new issue, regression; level error and above; at most once per
        issue every 30 min"."""
        words = []
        if self.on_new:
            words.append("new issue")
        if self.on_regression:
            words.append("regression")
        if self.on_unignored:
            words.append("ignored issue back")
        if self.on_spike:
            words.append(f"more than {self.spike_count} events in {self.spike_minutes} min")
        text = ", ".join(words) or "nothing"
        if self.min_level:
            text += f"; level {self.min_level} and above"
        if self.environment:
            text += f"; environment {self.environment}"
        return f"{text}; at most once per issue every {self.interval_minutes} min"

    def level_matches(self, level: str) -> bool:
        if not self.min_level:
            return True
        rank = LEVELS.index(level) if level in LEVELS else LEVELS.index("error")
        return rank >= LEVELS.index(self.min_level)

    def environment_matches(self, environment: str) -> bool:
        return not self.environment or environment == self.environment


class AlertChannel(models.Model):
    """Where a rule's alerts go. Email goes to ``addresses`` (one per line) or, when there are
    none, to the project's members who did not opt out; the webhooks POST to ``url``."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook (JSON, signed)"
        SLACK = "slack", "Slack"
        DISCORD = "discord", "Discord"

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="channels")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    addresses = models.TextField(blank=True, default="")
    url = models.URLField(max_length=2000, blank=True, default="")
    secret = models.CharField(max_length=64, default=new_secret)  # signs generic webhooks
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.get_kind_display()} → {self.target}"

    @property
    def address_list(self) -> list[str]:
        return [line.strip() for line in self.addresses.splitlines() if line.strip()]

    @property
    def target(self) -> str:
        """Who or where, for people: the addresses, "project members", or the URL's host."""
        if self.kind == self.Kind.EMAIL:
            return ", ".join(self.address_list) or "the project's members"
        from urllib.parse import urlsplit

        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}{'/…' if parts.path.strip('/') else ''}"


class AlertSignal(models.Model):
    """Written by the digest, read (and deleted) by the alert worker."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=16)  # new, regression, unignored
    event_id = models.CharField(max_length=32)
    created = models.DateTimeField(default=timezone.now)


class Alert(models.Model):
    """One firing of a rule for an issue (``issue`` is None for a test alert), with what it
    said (``context``: the payload's data, frozen when it fired)."""

    # A removed rule's alerts stay in their issues' history (the context names the rule).
    rule = models.ForeignKey(
        AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    issue = models.ForeignKey(
        Issue, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    action = models.CharField(max_length=16)  # new, regression, unignored, spike, test
    event_id = models.CharField(max_length=32, blank=True, default="")
    context = models.JSONField(default=dict)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # "Did this rule alert this issue lately?", asked before every alert.
            models.Index(fields=["rule", "issue", "action", "-created"], name="alert_recent"),
            models.Index(fields=["rule", "-created"], name="alert_by_rule"),  # the rule's page
            models.Index(fields=["issue", "-created"], name="alert_by_issue"),  # its activity
            models.Index(fields=["created"], name="alert_age"),  # pruning
        ]


class Delivery(models.Model):
    """An alert on its way to one channel: pending (due at ``next_attempt``), sent, or failed
    (every retry used up, or a test alert that failed once)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(
        AlertChannel, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    kind = models.CharField(max_length=16)  # the channel's, kept when the channel is removed
    target = models.CharField(max_length=300, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=500, blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt"], name="delivery_due")]


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    created = models.DateTimeField(default=timezone.now)
    ok = models.BooleanField()
    detail = models.CharField(max_length=500)  # "HTTP 200", "connection refused", ...
    duration_ms = models.PositiveIntegerField(default=0)


class EmailPreference(models.Model):
    """A user's alert emails: off everywhere, or off for some projects."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="email_preference"
    )
    alerts = models.BooleanField(default=True)
    muted_projects = models.ManyToManyField(Project, related_name="+", blank=True)
