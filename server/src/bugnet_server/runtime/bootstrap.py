"""The first start on an empty database: an organization, an admin login and a first project."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from bugnet_server.projects.models import (
    Organization,
    OrganizationMember,
    Project,
    ProjectKey,
    Team,
)

ADMIN_EMAIL = "admin@bugnet.local"


@dataclass(frozen=True)
class FirstRun:
    email: str
    password: str
    dsn: str


def bootstrap() -> FirstRun | None:
    """Create the first organization, admin and project; None if the database has them."""
    with transaction.atomic():
        if Organization.objects.exists():
            return None
        organization = Organization.objects.create(slug="default", name="Default")
        team = Team.objects.create(organization=organization, slug="default", name="Default")
        password = secrets.token_urlsafe(12)
        user = get_user_model().objects.create_superuser(
            username=ADMIN_EMAIL, email=ADMIN_EMAIL, password=password
        )
        OrganizationMember.objects.create(organization=organization, user=user, role="owner")
        team.members.add(user)
        project = Project.objects.create(organization=organization, slug="default", name="Default")
        project.teams.add(team)
        key = ProjectKey.objects.create(project=project)
    return FirstRun(ADMIN_EMAIL, password, key.dsn)
