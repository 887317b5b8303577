"""Who may see what: a superuser every project, a member their teams' projects, others none."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from ninja.security import HttpBearer

from bugnet_server.accounts.models import ApiToken, hash_token
from bugnet_server.projects.models import Project


class TokenAuth(HttpBearer):
    """``Authorization: Bearer <token>``; the request's ``auth`` is the token's user."""

    def authenticate(self, request: Any, token: str) -> Any:
        found = ApiToken.objects.select_related("user").filter(token_hash=hash_token(token)).first()
        if found is None or not found.user.is_active:
            return None
        now = timezone.now()
        if found.last_used is None or (now - found.last_used).total_seconds() > 60:
            ApiToken.objects.filter(pk=found.pk).update(last_used=now)
        return found.user


def visible_projects(user: Any) -> QuerySet[Project]:
    projects = Project.objects.select_related("organization")
    if user.is_superuser:
        return projects.all()
    return projects.filter(teams__members=user).distinct()
