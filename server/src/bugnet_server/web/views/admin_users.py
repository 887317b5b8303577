"""One user's page (organization roles, teams, account, set-password links), the teams pages
(members and projects of each team), and the set-password page that invite links open.

Organization owners and admins manage their organizations' members and teams here; superusers
everyone's. Who sees a project follows from its teams: a user sees a project when they are a
member of one of its teams.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.forms import SetPasswordForm
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from bugnet_server.projects.models import OrganizationMember, Project, Team
from bugnet_server.web import invites
from bugnet_server.web.admin_access import (
    admin_organizations,
    managed_user,
    may_change_account,
    may_manage_users,
)
from bugnet_server.web.forms import (
    TeamCreateForm,
    TeamForm,
    UserAccountForm,
    UserRolesForm,
    UserTeamsForm,
)
from bugnet_server.web.views.admin import ONCE, invite_link


def _allowed(request: HttpRequest) -> None:
    if not may_manage_users(request.user):
        raise PermissionDenied("only superusers and organization owners and admins manage users")


# --- one user --------------------------------------------------------------------------------


@never_cache  # it may show a password or a set-password link, once
def user_detail(request: HttpRequest, user_id: int) -> HttpResponse:
    _allowed(request)
    return _user_page(request, managed_user(request.user, user_id))


@require_POST
def user_roles(request: HttpRequest, user_id: int) -> HttpResponse:
    _allowed(request)
    user = managed_user(request.user, user_id)
    form = UserRolesForm(request.user, user, admin_organizations(request.user), request.POST)
    if not form.is_valid():
        return _user_page(request, user, roles=form)
    with transaction.atomic():
        for organization, _old, new in form.changes():
            if new:
                OrganizationMember.objects.update_or_create(
                    organization=organization, user=user, defaults={"role": new}
                )
            else:  # out of the organization: out of its teams too, so out of its projects
                OrganizationMember.objects.filter(organization=organization, user=user).delete()
                user.teams.remove(*Team.objects.filter(organization=organization))
    messages.success(request, f"Saved {user.get_username()}'s organization roles.")
    if _still_managed(request, user):
        return redirect("web:user", user.pk)
    return redirect("web:users" if may_manage_users(request.user) else "web:projects")


def _still_managed(request: HttpRequest, user: Any) -> bool:
    try:
        managed_user(request.user, user.pk)
    except Http404:
        return False
    return True


@require_POST
def user_teams(request: HttpRequest, user_id: int) -> HttpResponse:
    _allowed(request)
    user = managed_user(request.user, user_id)
    organizations = admin_organizations(request.user)
    form = UserTeamsForm(user, organizations, request.POST)
    if not form.is_valid():
        return _user_page(request, user, teams=form)
    chosen = set(form.cleaned_data["teams"])
    offered = set(form.fields["teams"].queryset)  # type: ignore[attr-defined]
    with transaction.atomic():
        user.teams.remove(*(offered - chosen))
        user.teams.add(*chosen)
        # A team's member is a member of its organization.
        for organization in {team.organization for team in chosen}:
            OrganizationMember.objects.get_or_create(organization=organization, user=user)
    messages.success(request, f"Saved {user.get_username()}'s teams.")
    return redirect("web:user", user.pk)


@require_POST
def user_account(request: HttpRequest, user_id: int) -> HttpResponse:
    _allowed(request)
    user = managed_user(request.user, user_id)
    if not may_change_account(request.user, user):
        raise PermissionDenied("only a superuser changes this account")
    form = UserAccountForm(request.user, user, request.POST)
    if not form.is_valid():
        return _user_page(request, user, account=form)
    user.first_name = form.cleaned_data["name"]
    user.is_active = form.cleaned_data["is_active"]
    if "is_superuser" in form.fields:
        user.is_superuser = form.cleaned_data["is_superuser"]
    user.save(update_fields=["first_name", "is_active", "is_superuser"])
    messages.success(request, f"Saved {user.get_username()}'s account.")
    return redirect("web:user", user.pk)


@require_POST
def user_link(request: HttpRequest, user_id: int) -> HttpResponse:
    _allowed(request)
    user = managed_user(request.user, user_id)
    if not may_change_account(request.user, user) or not user.is_active:
        raise PermissionDenied("only a superuser makes a set-password link for this account")
    request.session[ONCE] = {"user": user.pk, **invite_link(request, user)}
    messages.success(request, f"Made a new set-password link for {user.get_username()}.")
    return redirect("web:user", user.pk)


def _user_page(request: HttpRequest, user: Any, **bound: Any) -> HttpResponse:
    organizations = admin_organizations(request.user)
    once = request.session.get(ONCE)
    if once and once.get("user") == user.pk:
        del request.session[ONCE]
    else:
        once = None
    account = may_change_account(request.user, user)
    context = {
        "person": user,
        "once": once,
        "roles": bound.get("roles") or UserRolesForm(request.user, user, organizations),
        "teams": bound.get("teams") or UserTeamsForm(user, organizations),
        "account": (bound.get("account") or UserAccountForm(request.user, user))
        if account
        else None,
        "link_days": invites.valid_days(),
        "email_enabled": invites.email_enabled(),
        "nav": "users",
    }
    return render(request, "web/users_detail.html", context, status=400 if bound else 200)


# --- teams ----------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def teams(request: HttpRequest) -> HttpResponse:
    _allowed(request)
    organizations = admin_organizations(request.user)
    form = TeamCreateForm(organizations, request.POST or None)
    if request.method == "POST" and form.is_valid():
        team = Team.objects.create(
            organization=form.cleaned_data["organization"], slug=form.slug,
            name=form.cleaned_data["name"],
        )  # fmt: skip
        messages.success(request, f"Created the team “{team.name}”: add its members and projects.")
        return redirect("web:team", team.pk)
    found = (
        Team.objects.filter(organization__in=organizations)
        .select_related("organization")
        .prefetch_related(
            "members", Prefetch("projects", queryset=Project.objects.order_by("name"))
        )
        .order_by("organization__slug", "name")
    )
    context = {"teams": found, "form": form, "nav": "users"}
    return render(request, "web/users_teams.html", context, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
def team_detail(request: HttpRequest, team_id: int) -> HttpResponse:
    _allowed(request)
    team = (
        Team.objects.filter(pk=team_id, organization__in=admin_organizations(request.user))
        .select_related("organization")
        .first()
    )
    if team is None:
        raise Http404("no such team")
    form = TeamForm(request.POST or None, instance=team)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            form.save()
            team.members.set(form.cleaned_data["members"])
            team.projects.set(form.cleaned_data["projects"])
        messages.success(request, f"Saved the team “{team.name}”.")
        return redirect("web:team", team.pk)
    context = {"team": team, "form": form, "nav": "users"}
    return render(request, "web/users_team.html", context, status=400 if form.errors else 200)


# --- set-password page (reached without signing in: it lives under /login/) ----------------


@never_cache
@require_http_methods(["GET", "POST"])
def activate(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    response = _activate(request, uidb64, token)
    # The token is in this page's URL: no Referer carries it anywhere, not even to /static/.
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _activate(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    user = invites.user_for(uidb64, token)
    if user is None:
        return render(request, "web/admin_activate.html", {"invalid": True}, status=404)
    form = SetPasswordForm(user, request.POST or None)
    for field in form.fields.values():
        field.widget.attrs["autocomplete"] = "new-password"
    if request.method == "POST" and form.is_valid():
        form.save()  # a new password hash: this link stops working
        messages.success(request, "Your password is set. Sign in with your email and it.")
        return redirect("web:login")
    context = {"form": form, "person": user}
    return render(request, "web/admin_activate.html", context, status=400 if form.errors else 200)
