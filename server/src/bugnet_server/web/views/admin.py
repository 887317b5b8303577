"""Projects: creating one, its setup page (DSN, snippets, a test event) and its settings (name,
retention, teams, keys, and a list of its alert rules: ``alerts.py``); the users page (list,
create, invite).

Seeing a project's pages takes seeing the project (``access.project_for``: 404 otherwise);
changing anything takes being an owner or admin of its organization (403 otherwise).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Count, Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from bugnet_server.digest.grouping import GROUPING_VERSION
from bugnet_server.ingest.keys import CACHE_SECONDS
from bugnet_server.issues.models import Event, Issue
from bugnet_server.projects.models import OrganizationMember, Project, ProjectKey, Team
from bugnet_server.projects.usage import OUTCOME_LABELS, usage
from bugnet_server.web import invites, setup_event, snippets
from bugnet_server.web.access import is_org_admin, project_for
from bugnet_server.web.admin_access import admin_organizations, managed_users, may_manage_users
from bugnet_server.web.forms import (
    KeyCreateForm,
    ProjectCreateForm,
    ProjectSettingsForm,
    ProjectTeamsForm,
    RateLimitForm,
    UserCreateForm,
)
from bugnet_server.web.views import alerts

ONCE = "bugnet_admin_once"  # session key: a password or link shown once, on the next page
_EVENT_ID = re.compile(r"[0-9a-f]{32}")


def _managed_project(request: HttpRequest, org: str, project: str) -> Project:
    """The project, if the user may change it: 404 if they cannot see it, 403 if they may
    only look."""
    found = project_for(request.user, org, project)
    if not is_org_admin(request.user, found):
        raise PermissionDenied("only the organization's owners and admins change its projects")
    return found


# --- creating a project -----------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def project_create(request: HttpRequest) -> HttpResponse:
    organizations = admin_organizations(request.user)
    if not organizations.exists():
        raise PermissionDenied("only an organization's owners and admins create projects")
    form = ProjectCreateForm(request.user, organizations, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = _create_project(request.user, form)
        except IntegrityError:  # the same name, submitted twice at once
            form.add_error("name", "A project with this slug was just made; choose another name.")
        else:
            messages.success(request, f"Created {project.name}. Set up an SDK with its DSN below.")
            return redirect("web:project-setup", project.organization.slug, project.slug)
    context = {"form": form, "nav": "projects"}
    return render(request, "web/project_create.html", context, status=400 if form.errors else 200)


def _create_project(user: Any, form: ProjectCreateForm) -> Project:
    data = form.cleaned_data
    organization = data["organization"]
    with transaction.atomic():
        project = Project.objects.create(
            organization=organization, slug=form.slug, name=data["name"]
        )
        teams = list(data["teams"])
        if form.new_team_slug:
            team = Team.objects.create(
                organization=organization, slug=form.new_team_slug, name=data["new_team"]
            )
            team.members.add(user)
            teams.append(team)
        project.teams.set(teams)
        ProjectKey.objects.create(project=project)
    return project


# --- setup: DSN, snippets, test event ---------------------------------------------------


def setup(request: HttpRequest, org: str, project: str) -> HttpResponse:
    found = project_for(request.user, org, project)
    # The key `bugnet project dsn` prints: the oldest active one.
    key = found.keys.filter(active=True).order_by("id").first()
    context: dict[str, Any] = {
        "project": found,
        "key": key,
        "dsn": key.dsn if key else "",
        "frameworks": snippets.frameworks(key.dsn) if key else [],
        "can_manage": is_org_admin(request.user, found),
        "nav": "projects",
    }
    sent = request.GET.get("test_event", "")
    if _EVENT_ID.fullmatch(sent):
        context["test_event"] = sent
        context["test_issue"] = (
            Event.objects.filter(project=found, event_id=sent).values_list("issue_id", flat=True)
        ).first()
    return render(request, "web/project_setup.html", context)


@require_POST
def test_event(request: HttpRequest, org: str, project: str) -> HttpResponse:
    found = project_for(request.user, org, project)
    event_id = setup_event.send(found, request.user.get_username(), client_ip=None)
    messages.success(
        request,
        f"Sent a test event ({setup_event.TITLE_TYPE}). It reaches the issue list within seconds.",
    )
    url = reverse("web:project-setup", args=[found.organization.slug, found.slug])
    return redirect(f"{url}?test_event={event_id}#test-event")


# --- settings ------------------------------------------------------------------------------


@dataclass
class KeyRow:
    key: ProjectKey
    form: RateLimitForm


@require_http_methods(["GET", "POST"])
def settings(request: HttpRequest, org: str, project: str) -> HttpResponse:
    if request.method == "GET":
        found = project_for(request.user, org, project)
        return _settings_page(request, found)
    found = _managed_project(request, org, project)
    # A copy for the form: validating writes into its instance, the page shows the saved one.
    form = ProjectSettingsForm(request.POST, instance=Project.objects.get(pk=found.pk))
    if not form.is_valid():
        return _settings_page(request, found, general=form)
    form.save()
    messages.success(request, "Saved the project's settings.")
    return redirect("web:project-settings", found.organization.slug, found.slug)


@require_POST
def project_teams(request: HttpRequest, org: str, project: str) -> HttpResponse:
    found = _managed_project(request, org, project)
    form = ProjectTeamsForm(request.user, found, request.POST)
    if not form.is_valid():
        return _settings_page(request, found, teams=form)
    found.teams.set(form.cleaned_data["teams"])
    messages.success(request, "Saved the project's teams.")
    return redirect(_settings_url(found, "teams"))


@require_POST
def key_create(request: HttpRequest, org: str, project: str) -> HttpResponse:
    found = _managed_project(request, org, project)
    form = KeyCreateForm(request.POST)
    if not form.is_valid():
        return _settings_page(request, found, key=form)
    ProjectKey.objects.create(project=found, label=form.cleaned_data["label"])
    messages.success(request, f"Created the key “{form.cleaned_data['label']}”.")
    return redirect(_settings_url(found, "keys"))


@require_POST
def key_state(
    request: HttpRequest, org: str, project: str, key_id: int, action: str
) -> HttpResponse:
    found = _managed_project(request, org, project)
    key = _key(found, key_id)
    if action == "rotate":
        new = ProjectKey.objects.create(
            project=found, label=f"{key.label} (rotated)"[:64],
            rate_limit_per_minute=key.rate_limit_per_minute,
        )  # fmt: skip
        messages.success(
            request,
            f"Made a new key ({new.public_key[:8]}…). The old key keeps working until you "
            "disable it: deploy the new DSN first, then disable the old key.",
        )
    elif action in ("disable", "enable"):
        key.active = action == "enable"
        key.save(update_fields=["active"])
        done = "Enabled" if key.active else "Disabled"
        messages.success(
            request, f"{done} the key “{key.label}” (within {CACHE_SECONDS:.0f} seconds)."
        )
    else:
        raise Http404("no such action")
    return redirect(_settings_url(found, "keys"))


@require_POST
def key_rate_limit(request: HttpRequest, org: str, project: str, key_id: int) -> HttpResponse:
    found = _managed_project(request, org, project)
    key = _key(found, key_id)
    form = RateLimitForm(request.POST, auto_id=f"id_key{key.pk}_%s")
    if not form.is_valid():
        return _settings_page(request, found, rate_limit=(key.pk, form))
    key.rate_limit_per_minute = form.cleaned_data["rate_limit_per_minute"]
    key.save(update_fields=["rate_limit_per_minute"])
    limit = key.rate_limit_per_minute
    what = f"{limit} events a minute" if limit else "any number of events"
    messages.success(request, f"The key “{key.label}” takes {what}.")
    return redirect(_settings_url(found, "keys"))


def _key(project: Project, key_id: int) -> ProjectKey:
    key = project.keys.filter(pk=key_id).first()
    if key is None:
        raise Http404("no such key")
    return key


def _settings_url(project: Project, section: str) -> str:
    url = reverse("web:project-settings", args=[project.organization.slug, project.slug])
    return f"{url}#{section}"


USAGE_DAYS = 30


def _settings_page(request: HttpRequest, project: Project, **bound: Any) -> HttpResponse:
    """The settings page, with ``bound`` forms (that failed validation) in place of fresh ones."""
    manage = is_org_admin(request.user, project)
    failed: dict[int, RateLimitForm] = dict([bound["rate_limit"]]) if "rate_limit" in bound else {}
    keys = [
        KeyRow(
            key,
            failed.get(key.pk) or RateLimitForm(
                initial={"rate_limit_per_minute": key.rate_limit_per_minute},
                auto_id=f"id_key{key.pk}_%s",
            ),
        )
        for key in project.keys.order_by("id")
    ]  # fmt: skip
    teams = project.teams.order_by("name").prefetch_related(
        Prefetch("members", queryset=get_user_model().objects.order_by("username"))
    )
    grouping = (
        Issue.objects.filter(project=project)
        .values("grouping_version")
        .annotate(issues=Count("id"))
        .order_by("grouping_version")
    )
    context = {
        "project": project,
        "can_manage": manage,
        "general": bound.get("general") or ProjectSettingsForm(instance=project),
        "teams_form": bound.get("teams")
        or ProjectTeamsForm(request.user, project, initial={"teams": list(project.teams.all())}),
        "key_form": bound.get("key") or KeyCreateForm(),
        "keys": keys,
        "teams": teams,
        "grouping_version": GROUPING_VERSION,
        "grouping": list(grouping),
        "key_cache_seconds": int(CACHE_SECONDS),
        "alerts": alerts.section(project),
        "usage": [
            {**row, "label": OUTCOME_LABELS.get(row["outcome"], row["outcome"])}
            for row in usage(project, USAGE_DAYS)
        ],
        "usage_days": USAGE_DAYS,
        "nav": "projects",
    }
    return render(request, "web/project_settings.html", context, status=400 if bound else 200)


# --- users -----------------------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
def users(request: HttpRequest) -> HttpResponse:
    if not may_manage_users(request.user):
        raise PermissionDenied("only superusers and organization owners and admins manage users")
    organizations = admin_organizations(request.user)
    form = UserCreateForm(request.user, organizations, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = _create_user(request, form)
        except IntegrityError:
            form.add_error("email", "There is a user with this email already.")
        else:
            return redirect("web:user", user.pk)
    memberships = OrganizationMember.objects.select_related("organization").order_by(
        "organization__slug"
    )
    teams = Team.objects.select_related("organization").order_by("organization__slug", "name")
    if not request.user.is_superuser:  # an admin sees what their organizations hold, no more
        memberships = memberships.filter(organization__in=organizations)
        teams = teams.filter(organization__in=organizations)
    rows = managed_users(request.user).prefetch_related(
        Prefetch("memberships", queryset=memberships), Prefetch("teams", queryset=teams)
    )
    context = {
        "users": rows,
        "form": form,
        "email_enabled": invites.email_enabled(),
        "nav": "users",
    }
    return render(request, "web/users.html", context, status=400 if form.errors else 200)


def _create_user(request: HttpRequest, form: UserCreateForm) -> Any:
    data = form.cleaned_data
    mode = data["mode"]
    password = secrets.token_urlsafe(12) if mode == "generate" else data.get("password") or None
    with transaction.atomic():
        user = get_user_model().objects.create_user(
            username=data["email"],
            email=data["email"],
            password=password if mode != "invite" else None,
        )
        user.first_name = data["name"]
        user.is_superuser = bool(data.get("is_superuser"))
        user.save(update_fields=["first_name", "is_superuser"])
        if data["organization"] is not None:
            OrganizationMember.objects.create(
                organization=data["organization"], user=user, role=data["role"]
            )
            user.teams.add(*data["teams"])
    once: dict[str, Any] = {"user": user.pk}
    if mode == "generate":
        once["password"] = password
    elif mode == "invite":
        once.update(invite_link(request, user))
    request.session[ONCE] = once
    messages.success(request, f"Created {user.get_username()}.")
    return user


def invite_link(request: HttpRequest, user: Any) -> dict[str, Any]:
    """A new set-password link for ``user``, emailed when email is set up: what to show once."""
    link = invites.set_password_link(user)
    shown: dict[str, Any] = {"link": link, "emailed": False}
    if invites.email_enabled():
        problem = invites.email_link(user, link, request.user)
        shown["emailed"] = problem is None
        shown["email_error"] = problem or ""
    return shown
