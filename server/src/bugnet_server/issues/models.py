"""Issues (groups of events with the same grouping key) and their events."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from bugnet_server.projects.models import Project


class Issue(models.Model):
    class Status(models.TextChoices):
        UNRESOLVED = "unresolved"
        RESOLVED = "resolved"
        IGNORED = "ignored"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="issues")
    short_id = models.PositiveIntegerField()
    grouping_hash = models.CharField(max_length=32)
    grouping_version = models.CharField(max_length=32)  # which algorithm made the key
    title = models.CharField(max_length=256)
    culprit = models.CharField(max_length=256, blank=True, default="")
    level = models.CharField(max_length=16, default="error")
    metadata = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UNRESOLVED)
    # Resolution details: "resolved in next release" waits for a release newer than this one.
    resolved_in_release = models.CharField(max_length=200, blank=True, default="")
    resolved_in_next_release = models.BooleanField(default=False)
    # When it was resolved: events received before then (a queue's backlog) do not reopen it.
    resolved_at = models.DateTimeField(null=True, blank=True)
    ignore_until = models.DateTimeField(null=True, blank=True)
    ignore_until_count = models.PositiveBigIntegerField(null=True, blank=True)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    times_seen = models.PositiveBigIntegerField(default=0)
    user_count = models.PositiveBigIntegerField(default=0)
    first_release = models.CharField(max_length=200, blank=True, default="")
    last_release = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "grouping_version", "grouping_hash"], name="one_issue_per_key"
            ),
            models.UniqueConstraint(fields=["project", "short_id"], name="issue_short_id"),
        ]
        indexes = [
            models.Index(fields=["project", "status", "-last_seen"], name="issue_list"),
        ]

    def __str__(self) -> str:
        return f"{self.short_name}: {self.title}"

    @property
    def short_name(self) -> str:
        return f"{self.project.short_prefix}-{self.short_id:X}"


class Event(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="events")
    event_id = models.CharField(max_length=32)
    timestamp = models.DateTimeField()
    received = models.DateTimeField()
    level = models.CharField(max_length=16)
    release = models.CharField(max_length=200, blank=True, default="")
    environment = models.CharField(max_length=64, blank=True, default="")
    data = models.BinaryField()  # the normalized event JSON, compressed

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "event_id"], name="event_once")]
        indexes = [
            models.Index(fields=["issue", "-timestamp"], name="issue_events"),
            models.Index(fields=["project", "received"], name="event_retention"),
        ]


class Release(models.Model):
    """A release as its project first saw it: an issue "resolved in the next release" reopens
    only for an event of a release first seen after the one it was resolved in."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    version = models.CharField(max_length=200)
    first_seen = models.DateTimeField()  # when the server received its first event

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "version"], name="one_release")]


class IssueActivity(models.Model):
    """Every change of an issue's state, with who made it (None: the system) and when."""

    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="activity")
    kind = models.CharField(max_length=32)  # new, resolved, unresolved, ignored, regression...
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    data = models.JSONField(default=dict)
    created = models.DateTimeField(auto_now_add=True)


class TagValue(models.Model):
    """How often each tag value was seen on an issue (``user`` counts distinct users)."""

    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="tag_values")
    key = models.CharField(max_length=200)
    value = models.CharField(max_length=200)
    count = models.PositiveBigIntegerField(default=0)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issue", "key", "value"], name="one_tag_value")
        ]
        # The issue page's tag breakdown: the top values of each key.
        indexes = [models.Index(fields=["issue", "key", "-count"], name="tag_top_values")]


class HourlyCount(models.Model):
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="hourly")
    hour = models.DateTimeField()
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issue", "hour"], name="one_hour")]
