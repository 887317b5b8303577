"""Who may manage what on the admin pages: a superuser everything; an organization's owners
and admins its members, teams and projects. Owners alone hand out (or take away) ownership,
and an organization always keeps one owner."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import Http404

from bugnet_server.projects.models import Organization, OrganizationMember

MANAGING_ROLES = (OrganizationMember.Role.OWNER, OrganizationMember.Role.ADMIN)


def admin_organizations(user: Any) -> QuerySet[Organization]:
    """The organizations ``user`` manages, by slug."""
    organizations = Organization.objects.order_by("slug")
    if user.is_superuser:
        return organizations.all()
    return organizations.filter(members__user=user, members__role__in=MANAGING_ROLES)


def may_manage_users(user: Any) -> bool:
    """Whether ``user`` may open the users pages at all."""
    return bool(user.is_superuser or admin_organizations(user).exists())


def managed_users(user: Any) -> QuerySet[Any]:
    """The logins ``user`` may see and manage on the users pages."""
    users = get_user_model().objects.order_by("username")
    if user.is_superuser:
        return users.all()
    return users.filter(memberships__organization__in=admin_organizations(user)).distinct()


def managed_user(actor: Any, user_id: int) -> Any:
    """The login ``user_id`` if ``actor`` may manage it; 404 otherwise."""
    found = managed_users(actor).filter(pk=user_id).first()
    if found is None:
        raise Http404("no such user")
    return found


def may_change_account(actor: Any, user: Any) -> bool:
    """Name, active flag, set-password links: a superuser for anyone; an organization admin
    for a login that is no superuser and belongs to none but organizations the admin manages
    (else an admin of one organization could take over an account of another)."""
    if actor.is_superuser:
        return True
    if user.is_superuser:
        return False
    managed = set(admin_organizations(actor).values_list("pk", flat=True))
    theirs = set(user.memberships.values_list("organization_id", flat=True))
    return bool(theirs) and theirs <= managed


def is_owner(user: Any, organization: Organization) -> bool:
    return bool(
        user.is_superuser
        or OrganizationMember.objects.filter(
            organization=organization, user=user, role=OrganizationMember.Role.OWNER
        ).exists()
    )


def other_owners(organization: Organization, user: Any) -> bool:
    """Whether ``organization`` has an owner besides ``user``."""
    return (
        OrganizationMember.objects.filter(
            organization=organization, role=OrganizationMember.Role.OWNER
        )
        .exclude(user=user)
        .exists()
    )
