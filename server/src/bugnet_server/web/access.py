"""Who may see what in the web UI: the same rule as the API (a superuser sees every project, a
member their teams' projects). Anything else is a 404, so a page never tells an outsider that
a project or an issue exists."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from bugnet_server.api.access import visible_projects
from bugnet_server.issues.models import Issue
from bugnet_server.projects.models import OrganizationMember, Project

__all__ = ["is_org_admin", "issue_for", "member_projects", "project_for", "visible_projects"]


def member_projects(user: Any) -> QuerySet[Project]:
    """The projects of the user's teams (what alert emails to "the members" go by), even for a
    superuser, who sees more."""
    return Project.objects.select_related("organization").filter(teams__members=user).distinct()


def project_for(user: Any, org: str, project: str) -> Project:
    found = visible_projects(user).filter(organization__slug=org, slug=project).first()
    if found is None:
        raise Http404("no such project")
    return found


def issue_for(user: Any, issue_id: int) -> Issue:
    found = (
        Issue.objects.select_related("project__organization")
        .filter(pk=issue_id, project__in=visible_projects(user))
        .first()
    )
    if found is None:
        raise Http404("no such issue")
    return found


def is_org_admin(user: Any, project: Project) -> bool:
    """Owners and admins of the project's organization (and superusers) manage it."""
    if user.is_superuser:
        return True
    return OrganizationMember.objects.filter(
        organization_id=project.organization_id,
        user=user,
        role__in=[OrganizationMember.Role.OWNER, OrganizationMember.Role.ADMIN],
    ).exists()
