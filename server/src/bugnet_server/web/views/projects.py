"""The project list: per project, events in the last 24 hours (a bar per hour) and open
issues."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from bugnet_server.issues.models import HourlyCount, Issue
from bugnet_server.web.access import visible_projects


def project_list(request: HttpRequest) -> HttpResponse:
    projects = list(visible_projects(request.user).order_by("organization__slug", "name"))
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(hours=23)
    hours: dict[int, list[int]] = {p.pk: [0] * 24 for p in projects}
    per_hour = (
        HourlyCount.objects.filter(issue__project__in=projects, hour__gte=start)
        .values("issue__project_id", "hour")
        .annotate(n=Sum("count"))
    )
    for row in per_hour:
        index = int((row["hour"] - start).total_seconds() // 3600)
        if 0 <= index < 24:
            hours[row["issue__project_id"]][index] += row["n"]
    counts: dict[int, tuple[int, int]] = {
        row["project_id"]: (row["total"] or 0, row["open"] or 0)
        for row in Issue.objects.filter(project__in=projects)
        .values("project_id")
        .annotate(total=Sum("times_seen"), open=Count("pk", filter=Q(status="unresolved")))
    }
    rows = [
        {
            "project": p,
            "hours": hours[p.pk],
            "total": counts.get(p.pk, (0, 0))[0],
            "open": counts.get(p.pk, (0, 0))[1],
        }
        for p in projects
    ]
    can_create = (
        request.user.is_superuser
        or request.user.memberships.filter(  # type: ignore[union-attr]
            role__in=["owner", "admin"]
        ).exists()
    )
    context = {"rows": rows, "nav": "projects", "can_create": can_create}
    return render(request, "web/projects.html", context)


def no_icon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on their own (for the raw JSON view, say): nothing, and
    remember it for a day."""
    response = HttpResponse(status=204)
    response["Cache-Control"] = "public, max-age=86400"
    return response
