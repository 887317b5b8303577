"""Organizations, teams, projects and their ingest keys."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from django.conf import settings
from django.db import models


class Organization(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.slug


class OrganizationMember(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        MEMBER = "member"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="one_membership")
        ]


class Team(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="teams")
    slug = models.SlugField()
    name = models.CharField(max_length=200)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teams", blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "slug"], name="team_slug")]

    def __str__(self) -> str:
        return f"{self.organization.slug}/{self.slug}"


class Project(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="projects"
    )
    slug = models.SlugField()
    name = models.CharField(max_length=200)
    platform = models.CharField(max_length=64, default="python")
    teams = models.ManyToManyField(Team, related_name="projects", blank=True)
    created = models.DateTimeField(auto_now_add=True)
    # Short ids (SHOP-1A) count per project; taken under the digest's write lock.
    next_short_id = models.PositiveIntegerField(default=1)
    retention_days = models.PositiveIntegerField(default=90)
    retention_max_events = models.PositiveIntegerField(default=100_000)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="project_slug")
        ]

    def __str__(self) -> str:
        return f"{self.organization.slug}/{self.slug}"

    @property
    def short_prefix(self) -> str:
        return self.slug.upper().replace("-", "")[:12] or "P"


def new_public_key() -> str:
    return secrets.token_hex(16)


class ProjectKey(models.Model):
    """A DSN's key. It writes only to its own project; ``rate_limit_per_minute`` caps it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="keys")
    label = models.CharField(max_length=64, default="Default")
    public_key = models.CharField(max_length=32, unique=True, default=new_public_key)
    secret_key = models.CharField(max_length=32, default=new_public_key)
    active = models.BooleanField(default=True)
    rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.project} key {self.public_key[:8]}"

    @property
    def dsn(self) -> str:
        base = urlsplit(settings.BASE_URL)
        path = base.path.rstrip("/")
        return f"{base.scheme}://{self.public_key}@{base.netloc}{path}/{self.project_id}"


class Outcome(models.Model):
    """What a project received, by day, data category and outcome: accepted (and stored or
    counted), rate_limited or invalid; and client_discard, what the SDKs' client reports say
    they dropped before sending. Sessions, client reports, transactions and check-ins are
    counted here rather than stored. ``reason`` says why for all but accepted (``key_quota``,
    an SDK's ``before_send``, ``queue_overflow``...).

    Append-only: each ingest request adds its own rows (so concurrent requests never wait on
    one shared counter row) and readers sum them; the digest worker now and then compacts a
    day's rows into one (see ``digest/compaction.py``)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="outcomes")
    day = models.DateField()
    category = models.CharField(max_length=32)
    outcome = models.CharField(max_length=16)
    reason = models.CharField(max_length=64, blank=True, default="")
    quantity = models.PositiveBigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["project", "day"], name="outcome_by_day")]


class KeyUsage(models.Model):
    """Events a rate-limited key sent in one minute, shared by every ingest process."""

    key = models.ForeignKey(ProjectKey, on_delete=models.CASCADE, related_name="+")
    minute = models.BigIntegerField()  # epoch seconds // 60
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "minute"], name="one_usage_row")]
