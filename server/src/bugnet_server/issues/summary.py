"""The fields that name a project and an issue outside the web UI, shared by the REST API and
the alerts' payloads (each adds its own: the API a string ``count``, as Sentry's, alerts a
number), and the timestamps they write."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from bugnet_server.issues.models import Issue
    from bugnet_server.projects.models import Project


def iso(value: dt.datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, as Sentry writes times."""
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def project_fields(project: Project) -> dict[str, Any]:
    return {"id": str(project.id), "slug": project.slug, "name": project.name,
            "organization": {"slug": project.organization.slug}}  # fmt: skip


def issue_fields(issue: Issue) -> dict[str, Any]:
    return {
        "id": str(issue.id),
        "shortId": issue.short_name,
        "title": issue.title,
        "culprit": issue.culprit,
        "level": issue.level,
        "status": issue.status,
        "userCount": issue.user_count,
        "firstSeen": iso(issue.first_seen),
        "lastSeen": iso(issue.last_seen),
        "permalink": f"{settings.BASE_URL}/issues/{issue.id}/",
    }
